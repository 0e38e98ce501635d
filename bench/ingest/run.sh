#!/usr/bin/env bash
# Ingest throughput (1 and 2 workers), event-to-profile delay at a fixed
# offered load, and redis-benchmark's rate for the same script calls as the
# bound. Prints figures; asserts nothing.
#   bash bench/ingest/run.sh [--rate N] [--seconds N] [--backlog N]
set -euo pipefail
cd "$(dirname "$0")/../.."
. bench/lib.sh
bench_aisle_bin
nice /usr/bin/python3 bench/ingest/bench.py "$@"
