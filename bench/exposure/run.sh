#!/usr/bin/env bash
# What experiments cost a served page, against the Recommend budget:
#   - Recommend through a real server with exposure logging on and off, and
#     with a learned model against the hand weights, in alternating blocks
#     of one run (serve.py): calls/s, p99, the relative costs,
#   - exposure logging in process: the caller's time per submit (p50, p99)
#     and the process CPU per exposure (10 items with their 13 features,
#     producer thread, librdkafka and the in-process Kafka mock broker),
#   - XGBoost LambdaMART scoring (200 trees, depth 6, the ranker's 11
#     features) per candidate, in batches of 10, 100 and 500 candidates,
#     against the hand weights over the same features.
# Prints figures with the load average; asserts nothing.
#   bash bench/exposure/run.sh [EXPOSURES] [-- serve.py flags]
set -euo pipefail
cd "$(dirname "$0")/../.."
. bench/lib.sh
bench_aisle_bin
n=${1:-100000}
[ $# -gt 0 ] && shift
[ "${1:-}" = "--" ] && shift
bazel build --color=no --curses=no --noshow_progress -c opt //bench/exposure:exposure_bench >&2
echo "== machine: $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)"
/usr/bin/python3 bench/exposure/serve.py "$@"
echo "== in process, load average $(cut -d' ' -f1-3 /proc/loadavg)"
"$(bazel info -c opt bazel-bin 2>/dev/null)/bench/exposure/exposure_bench" "$n" 2>/dev/null
