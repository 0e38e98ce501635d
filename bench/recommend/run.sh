#!/usr/bin/env bash
# Recommend throughput and latency on a 100,000-item catalog with 100,000
# user profiles, each call for a user drawn at random (load.py), beside an
# empty method in the same run; and the event-to-recommendation delay.
# Prints figures; asserts nothing.
#   bash bench/recommend/run.sh [--items N] [--users N] [--requests N] [--procs N]
set -euo pipefail
cd "$(dirname "$0")/../.."
. bench/lib.sh
bench_aisle_bin
/usr/bin/python3 bench/recommend/bench.py "$@"
