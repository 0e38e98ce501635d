#!/usr/bin/env bash
# What experiments cost a served page, against the Recommend budget:
#   - exposure logging: the caller's time per submit (p50, p99) and the
#     process CPU per exposure (10 items with 8 features each, producer
#     thread, librdkafka and the in-process Kafka mock broker included),
#   - XGBoost LambdaMART scoring (200 trees, depth 6, 8 features) per
#     candidate, in batches of 10, 100 and 500 candidates.
#
#   bash bench/exposure/run.sh [EXPOSURES]   # 100000 by default
set -euo pipefail
cd "$(dirname "$0")/../.."
bash deploy/setup.sh
bazel build -c opt //bench/exposure:exposure_bench
echo "== machine: $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)"
"$(bazel info -c opt bazel-bin 2>/dev/null)/bench/exposure/exposure_bench" "${1:-100000}" 2>/dev/null
