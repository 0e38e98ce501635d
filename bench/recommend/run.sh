#!/usr/bin/env bash
# Recommend throughput and latency under h2load on a 100,000-item catalog,
# and the event-to-recommendation delay. Prints figures; asserts nothing.
#   bash bench/recommend/run.sh [--items N] [--requests N] [--connections N]
set -euo pipefail
cd "$(dirname "$0")/../.."
. bench/lib.sh
bench_aisle_bin
/usr/bin/python3 bench/recommend/bench.py "$@"
