#!/usr/bin/env bash
# The learning loop live, end to end through real servers and Kafka (loop.py):
# simulated shoppers with known tastes, the hand weights serving, `aisle rank
# train` on the logged exposures and signals, an experiment putting the
# learned ranker on half the users, more traffic, `aisle report`'s lift.
# Prints figures with the load average; asserts nothing.
#   bash bench/loop/run.sh [--users N] [--train-pages N] [--test-pages N]
set -euo pipefail
cd "$(dirname "$0")/../.."
. bench/lib.sh
bench_aisle_bin
/usr/bin/python3 bench/loop/loop.py "$@"
