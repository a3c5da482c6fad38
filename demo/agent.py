#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""A stand-in for an AI agent, for `make demo`.

It does what agents do when they call tools: runs commands, reads a file,
fails to read another, talks to a local service it started, and fails to
reach one that is down. Every one of those actions should appear in the
agenttrace log, with what the kernel returned.
"""
import os
import socket
import subprocess
import sys
import threading

HERE = os.path.dirname(os.path.abspath(__file__))


def tool(argv):
    print(f"agent: tool call: {' '.join(argv)}", flush=True)
    out = subprocess.run(argv, capture_output=True, text=True)
    print(f"agent:   exit {out.returncode}: {out.stdout.strip()[:60]!r}", flush=True)


def main():
    # Tool calls: a plain command and a shell pipeline.
    tool(["uname", "-sr"])
    tool(["sh", "-c", "ls / | head -n 3"])

    # Read a file, then fail to read one that is not there (ENOENT).
    with open(os.path.join(HERE, "task.txt")) as f:
        print(f"agent: read task: {f.readline().strip()!r}", flush=True)
    try:
        open("/nonexistent/credentials.json")
    except OSError as e:
        print(f"agent: open failed as expected: {e.strerror}", flush=True)

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
    with socket.create_connection(("127.0.0.1", port)) as c:
        print(f"agent: service said: {c.recv(64).decode().strip()!r}", flush=True)
    t.join()

    # A port nobody listens on: ECONNREFUSED.
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    closed_port = probe.getsockname()[1]
    probe.close()
    try:
        socket.create_connection(("127.0.0.1", closed_port), timeout=2)
    except OSError as e:
        print(f"agent: connect to port {closed_port} failed as expected: {e.strerror}", flush=True)
    server.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
