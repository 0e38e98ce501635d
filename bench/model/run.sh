#!/usr/bin/env bash
# Decode speed of the engine against the memory-bandwidth bound.
#
# Builds model_bench with Bazel (-c opt), writes a random-weight llama2.c
# checkpoint of ~110M parameters (dim 768, 12 layers, 12 heads, vocab
# 32000, seq 1024) and its int8 (Q8 group) export into a temporary
# directory, removed on exit, then measures:
#   - greedy decoding tokens/s for fp32 and int8 at 1 and 2 threads,
#   - streaming-read memory bandwidth at the same thread count, measured
#     between those runs,
#   - weight bytes read per token, and the ratio
#       tokens/s x bytes/token / bandwidth (same thread count).
# Every figure is the best of REPEAT runs (default 3): the machine is
# shared, and the best run is the one least disturbed by other work. For
# the same reason tok/s is also given from the 10th-percentile token time.
#
#   bash bench/model/run.sh              # TOKENS=128 REPEAT=3 by default
#   MODEL_BENCH=/path/to/model_bench bash bench/model/run.sh  # no Bazel
set -euo pipefail

cd "$(dirname "$0")/../.."
TOKENS=${TOKENS:-128}
REPEAT=${REPEAT:-3}

if [ -n "${MODEL_BENCH:-}" ]; then
    bin=$MODEL_BENCH # a model_bench built elsewhere (a machine without Bazel)
else
    bazel build -c opt //bench/model:model_bench
    bin="$(bazel info -c opt bazel-bin 2>/dev/null)/bench/model/model_bench"
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/aisle-model-bench.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

echo "== writing a random 110M checkpoint and its int8 export in $tmp"
"$bin" mkckpt "$tmp/fp32.bin" 768 2048 12 12 12 32000 1024
"$bin" convert --in "$tmp/fp32.bin" --out "$tmp/int8.bin" --format llama2c \
    --type q8_0

# get KEY CMD...: the value of the "KEY value" line CMD prints.
get() {
    local key=$1
    shift
    "$@" | awk -v k="$key" '$1 == k { print $2 }'
}

max() { awk -v a="$1" -v b="$2" 'BEGIN { print (b > a) ? b : a }'; }

echo "== machine: $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)"
printf '\n%-6s %-7s %8s %8s %10s %10s %12s %9s %9s %8s\n' model threads \
    tok/s "tok/s*" "MB/token" "bw GB/s" "GB/s used*" "of bound" "bound*" \
    "prompt"
for m in fp32 int8; do
    info=$("$bin" gen "$tmp/$m.bin" 1 "$TOKENS")
    bytes=$(awk '$1 == "weight_bytes_per_token" { print $2 }' <<<"$info")
    kv=$(awk '$1 == "kv_bytes_per_token" { print $2 }' <<<"$info")
    for t in 1 2; do
        # Bandwidth is measured next to each run: on a shared host it moves
        # with the neighbours' load, and the ratio should compare like with
        # like.
        bw=0 tps=0 fast=0 prompt=0
        for _ in $(seq "$REPEAT"); do
            bw=$(max "$bw" "$(get bandwidth_gbs "$bin" bw "$t")")
            out=$("$bin" gen "$tmp/$m.bin" "$t" "$TOKENS")
            tps=$(max "$tps" "$(awk '$1 == "tok_per_s" { print $2 }' <<<"$out")")
            fast=$(max "$fast" "$(awk '$1 == "tok_per_s_p10" { print $2 }' <<<"$out")")
            prompt=$(max "$prompt" "$(awk '$1 == "prompt_tok_per_s" { print $2 }' <<<"$out")")
        done
        awk -v m="$m" -v t="$t" -v tps="$tps" -v f="$fast" -v b="$bytes" \
            -v bw="$bw" -v p="$prompt" \
            'BEGIN { printf "%-6s %-7s %8.1f %8.1f %10.1f %10.2f %12.2f %8.0f%% %8.0f%% %8.1f\n",
                            m, t, tps, f, b / 1e6, bw, f * b / 1e9,
                            100 * tps * b / 1e9 / bw, 100 * f * b / 1e9 / bw, p }'
    done
done
echo
echo "tok/s: whole run; tok/s*: from the 10th-percentile token time, the"
echo "speed when no other process takes the CPU (GB/s used* and bound* use"
echo "it). of bound = tok/s x MB/token / bandwidth (bw GB/s: streaming"
echo "reads at the same thread count, measured between the runs)."
echo "prompt: tok/s for a $TOKENS-token prompt, run in batches of 16."
echo
echo "weight MB/token counts every matrix once, the embedding table in full"
echo "since it is also the classifier. Attention also reads the KV cache:"
echo "$kv bytes/token on average over these $TOKENS tokens, not counted."
