#!/usr/bin/env bash
# Soak: serve and ingest at the goal load for a set time, with a Redis
# restart and a broker outage in the middle, sampling resident memory,
# threads, file descriptors and errors over time. Prints figures; asserts
# nothing.
#   bash bench/soak/run.sh [--minutes N] [--rps N] [--signals-per-s N] [--items N]
set -euo pipefail
cd "$(dirname "$0")/../.."
. bench/lib.sh
bench_aisle_bin
/usr/bin/python3 bench/soak/soak.py "$@"
