#!/usr/bin/env bash
# Recommend throughput and latency on a 100,000-item catalog with 100,000
# user profiles, each call for a user drawn at random by the C load generator
# (load.c), beside an empty method in the same run: closed loop (calls/s at
# a fixed number in flight), then open loop at --rate calls/s (the p99 a
# client sees at that rate); and the event-to-recommendation delay.
# Prints figures and the load average; asserts nothing.
#   bash bench/recommend/run.sh [--items N] [--users N] [--requests N] [--inflight N]
#                               [--channels N] [--rate N] [--seconds S] [--threads N]
set -euo pipefail
cd "$(dirname "$0")/../.."
. bench/lib.sh
bench_aisle_bin
/usr/bin/python3 bench/recommend/bench.py "$@"
