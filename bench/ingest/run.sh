#!/usr/bin/env bash
# Ingest throughput (1 and 2 workers), event-to-profile delay at a fixed
# offered load, and redis-benchmark's rate for the same write calls as the
# bound: the worker's AISLE.APPLY (Redis loading aisle_redis.so) against the
# Lua script's write (a Redis without it), and with --old an older binary
# (with --old-module, writing into a Redis loading its own aisle_redis.so).
# Prints figures; asserts nothing.
#   bash bench/ingest/run.sh [--rate N] [--seconds N] [--backlog N] [--old AISLE]
#                            [--old-module SO]
set -euo pipefail
cd "$(dirname "$0")/../.."
. bench/lib.sh
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
bench_aisle_bin "$dir"
bazel build --color=no --curses=no --noshow_progress -c opt //services/profile:aisle_redis.so >&2
cp "$(bazel info -c opt bazel-bin 2>/dev/null)/services/profile/aisle_redis.so" "$dir/"
export AISLE_REDIS_MODULE=$dir/aisle_redis.so
nice /usr/bin/python3 bench/ingest/bench.py "$@"
