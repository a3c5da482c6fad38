#!/bin/sh
# The scripted agent of show_test.go: it reads its project's secrets itself,
# then runs three tool calls one after the other, as an agent does.
#
#	agent.sh DIR PORT FORKTREE
#
# 1. a shell pipeline: sh, a subshell (printf), tr and wc;
# 2. a daemon-like tool: FORKTREE forks a child that calls setsid, forks a
#    grandchild and exits; the grandchild, reparented, opens a file later;
# 3. a tool that reads an SSH key and connects to 127.0.0.1:PORT.
set -eu
dir=$1 port=$2 forktree=$3
# A fixed locale and PATH: the same opens on every machine with these programs.
LC_ALL=C
export LC_ALL
PATH=/usr/bin:/bin
: < "$dir/project/.env"
sh -c 'printf "alpha\nbeta\n" | tr a-z A-Z | wc -l > "$1/pipeline.out"' sh "$dir"
"$forktree" "$dir/child.txt" "$dir/grandchild.txt"
bash -c 'read -r key < "$1/home/.ssh/id_ed25519"; exec 3<>"/dev/tcp/127.0.0.1/$2"; echo "$key" >&3' bash "$dir" "$port"
