#!/usr/bin/env bash
# Recommend throughput and latency on a 100,000-item catalog with 100,000
# user profiles, each call for a user drawn at random by the C load generator
# (load.c), beside an empty method in the same run: closed loop (calls/s at
# a fixed number in flight), then open loop at --rate calls/s (the p99 a
# client sees at that rate), then the highest rate whose p99 stays under
# --slo-ms (10; a bisection of short open-loop runs below each closed-loop
# rate); and the event-to-recommendation delay. First,
# the vector search alone (index.c): µs per search and recall per nprobe.
# Prints figures and the load average; asserts nothing.
#   bash bench/recommend/run.sh [--items N] [--users N] [--requests N] [--inflight N]
#                               [--channels N] [--rate N] [--seconds S] [--threads N]
#                               [--slo-ms MS] [--slo-steps N] [--slo-seconds S]
set -euo pipefail
cd "$(dirname "$0")/../.."
. bench/lib.sh
bench_aisle_bin
bazel build --color=no --curses=no --noshow_progress -c opt //bench/recommend:index >&2
echo "== vector search alone, 100,000 synthetic items (load average $(cut -d' ' -f1-3 /proc/loadavg)):"
"$(bazel info -c opt bazel-bin 2>/dev/null)/bench/recommend/index"
/usr/bin/python3 bench/recommend/bench.py "$@"
