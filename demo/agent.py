#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""A stand-in for an AI agent, for `make demo`.

It does what agents do when they call tools: runs commands, reads a file,
fails to read another, has a tool read a secret, talks to a local service it
started, and fails to reach one that is down. Every one of those actions is
in the agenttrace log, with what the kernel returned.

Each "agent:" line it prints is a claim about what the log records (the
errno names are the kernel's, as the log writes them); the integration test
TestDemoNarration checks every one against the log.
"""
import errno
import os
import shlex
import socket
import subprocess
import sys
import tempfile
import threading

HERE = os.path.dirname(os.path.abspath(__file__))


def say(text):
    print(f"agent: {text}", flush=True)


def tool(argv):
    say(f"tool call: {shlex.join(argv)}")
    out = subprocess.run(argv, capture_output=True, text=True)
    say(f"  exit {out.returncode}: {out.stdout.strip()[:60]!r}")


def result(e=None):
    """What the syscall returned, as the log names it."""
    return "ok" if e is None else errno.errorcode[e.errno]


def main():
    # Tool calls: a plain command and a shell pipeline.
    tool(["uname", "-sr"])
    tool(["sh", "-c", "ls / | head -n 3"])

    # Read a file, then fail to read one that is not there.
    task = os.path.join(HERE, "task.txt")
    with open(task) as f:
        say(f"open {task}: {result()}")
        say(f"  task: {f.readline().strip()!r}")
    missing = "/nonexistent/credentials.json"
    try:
        open(missing)
    except OSError as e:
        say(f"open {missing}: {result(e)}")

    # A tool call that reads a secret: a project's .env file. agenttrace tags
    # the open credential_access (so does the agent's own write of it).
    with tempfile.TemporaryDirectory(prefix="agenttrace-demo-") as project:
        env = os.path.join(project, ".env")
        with open(env, "w") as f:
            f.write("DEMO_API_KEY=not-a-real-key\n")
        say(f"create {env}: {result()}")
        tool(["cat", env])

    # A loopback service the agent starts and talks to.
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    port = server.getsockname()[1]

    def serve():
        conn, _ = server.accept()
        conn.sendall(b"hello from the local service\n")
        conn.close()

    t = threading.Thread(target=serve)
    t.start()
    # A blocking connect: the log records its result as the kernel returned it.
    with socket.create_connection(("127.0.0.1", port)) as c:
        say(f"connect 127.0.0.1:{port}: {result()}")
        say(f"  service said: {c.recv(64).decode().strip()!r}")
    t.join()

    # A port nobody listens on. The connect blocks (no timeout), so the
    # kernel's answer is the connect's own result: ECONNREFUSED.
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    closed_port = probe.getsockname()[1]
    probe.close()
    s = socket.socket()
    try:
        s.connect(("127.0.0.1", closed_port))
        say(f"connect 127.0.0.1:{closed_port}: {result()}")
    except OSError as e:
        say(f"connect 127.0.0.1:{closed_port}: {result(e)}")
    finally:
        s.close()
    server.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
