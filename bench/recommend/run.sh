#!/usr/bin/env bash
# Recommend throughput and latency under h2load on a 100,000-item catalog,
# and the event-to-recommendation delay. Prints figures; asserts nothing.
#   bash bench/recommend/run.sh [--items N] [--requests N] [--connections N]
set -euo pipefail
cd "$(dirname "$0")/../.."
bash deploy/setup.sh
bazel build --color=no --curses=no --noshow_progress -c opt //:aisle
# A private copy: bazel-bin moves when another configuration is built.
bin=$(mktemp -d)/aisle
cp "$(bazel info -c opt bazel-bin 2>/dev/null)/aisle" "$bin"
AISLE_BIN=$bin exec /usr/bin/python3 bench/recommend/bench.py "$@"
