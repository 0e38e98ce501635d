#!/usr/bin/env bash
# Ingest throughput (1 and 2 workers), event-to-profile delay at a fixed
# offered load, and redis-benchmark's rate for the same script calls as the
# bound. Prints figures; asserts nothing.
#   bash bench/ingest/run.sh [--rate N] [--seconds N] [--backlog N]
set -euo pipefail
cd "$(dirname "$0")/../.."
bash deploy/setup.sh
bazel build --color=no --curses=no --noshow_progress -c opt //:aisle
# A private copy: bazel-bin moves when another configuration is built.
bin=$(mktemp -d)/aisle
cp "$(bazel info -c opt bazel-bin 2>/dev/null)/aisle" "$bin"
AISLE_BIN=$bin exec nice /usr/bin/python3 bench/ingest/bench.py "$@"
