#!/usr/bin/env bash
# Shop latency to the first chunk and to done, FAST and CONTEMPLATING, with
# the deterministic composer and with stories260K writing the text (when
# shared/models/stories260K is beside the workspace). Prints p50/p99 over
# --calls sequential calls; asserts nothing. Runs under nice: the machine
# is shared.
#   bash bench/shop/run.sh [--items N] [--users N] [--calls N]
set -euo pipefail
cd "$(dirname "$0")/../.."
. bench/lib.sh
bench_aisle_bin
nice /usr/bin/python3 bench/shop/bench.py "$@"
