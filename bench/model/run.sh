#!/usr/bin/env bash
# Speed of the engine against the memory-bandwidth bound (and llama.cpp).
#
# Builds model_bench with Bazel (-c opt), writes a random-weight llama2.c
# checkpoint of ~110M parameters (dim 768, 12 layers, 12 heads, vocab
# 32000, seq 1024), converts it to GGUF F32, Q8_0 and Q4_K_M (Q4_K
# matrices, Q6_K embedding) in a temporary directory, removed on exit,
# then measures for each at 1 and 2 threads:
#   - greedy decoding tokens/s, and prompt tokens/s for a TOKENS-long
#     prompt (run in batches of up to 64),
#   - streaming-read memory bandwidth at the same thread count, measured
#     between those runs, the weight bytes read per token, and the ratio
#       tokens/s x bytes/token / bandwidth (same thread count);
# then, at 1 thread: five sequences decoded together (model_batch_step)
# against one alone through the same call, alternating in each of ROUNDS
# rounds (default 5; the median of the rounds' ratios), and the time to first token of a 400-token prompt,
# cold and with its first 350 tokens (a system prompt) copied from a
# prefilled session. Every figure is the best of REPEAT runs (default 3):
# the machine is shared, and the best run is the one least disturbed by
# other work; tok/s is also given from the 10th-percentile token time.
#
# With LLAMA_BENCH naming a llama.cpp llama-bench binary (not built by
# the project), it runs on the same GGUF files and thread counts, once
# right after each of our REPEAT runs, and the ratios printed are the
# medians of the rounds' ratios (as for the five-sequence row: a ratio
# compares two runs that shared the same minutes of a shared machine).
#
#   bash bench/model/run.sh              # TOKENS=128 REPEAT=3 by default
#   MODEL_BENCH=/path/to/model_bench bash bench/model/run.sh  # no Bazel
#   LLAMA_BENCH=~/llama.cpp/build/bin/llama-bench bash bench/model/run.sh
#   QWEN=1 bash bench/model/run.sh       # also a Qwen2.5-0.5B-shaped model
set -euo pipefail

cd "$(dirname "$0")/../.."
TOKENS=${TOKENS:-128}
REPEAT=${REPEAT:-3}
ROUNDS=${ROUNDS:-5} # rounds of the five-sequence row

if [ -n "${MODEL_BENCH:-}" ]; then
    bin=$MODEL_BENCH # a model_bench built elsewhere (a machine without Bazel)
else
    bazel build -c opt //bench/model:model_bench
    bin="$(bazel info -c opt bazel-bin 2>/dev/null)/bench/model/model_bench"
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/aisle-model-bench.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# Model shapes: dim hidden layers heads kv_heads vocab seq. QWEN=1 adds a
# Qwen2.5-0.5B-shaped one (llama architecture: its biases cost nothing
# measurable; 2 GB of F32, and slow on 2 cores).
declare -A shape=([110m]="768 2048 12 12 12 32000 1024"
                  [qwen0.5b]="896 4864 24 14 2 151936 1024")
shapes="110m${QWEN:+ qwen0.5b}"
models=()
# A SentencePiece-style llama2.c tokenizer.bin of n pieces (<unk>, <s>,
# </s>, the 256 byte tokens, then filler words), embedded in each GGUF:
# llama.cpp refuses a file without a vocabulary, and the pieces do not
# change what either engine computes per token.
mktok() {
    /usr/bin/python3 - "$1" "$2" <<'PY'
import struct, sys
path, n = sys.argv[1], int(sys.argv[2])
pieces = [b"<unk>", b"\n<s>\n", b"\n</s>\n"] + [b"<0x%02X>" % i for i in range(256)]
pieces += [b" w%d" % i for i in range(n - len(pieces))]
with open(path, "wb") as f:
    f.write(struct.pack("<i", max(len(p) for p in pieces)))
    for i, p in enumerate(pieces):
        f.write(struct.pack("<fi", -float(i), len(p)) + p)
PY
}

for sh in $shapes; do
    echo "== writing a random $sh checkpoint and its GGUF conversions in $tmp"
    # shellcheck disable=SC2086 # the shape is a list of numbers
    "$bin" mkckpt "$tmp/ckpt.bin" ${shape[$sh]}
    # shellcheck disable=SC2086
    mktok "$tmp/tok.bin" "$(set -- ${shape[$sh]}; echo "$6")"
    for m in f32 q8_0 q4_k_m; do
        "$bin" convert --in "$tmp/ckpt.bin" --tokenizer "$tmp/tok.bin" \
            --out "$tmp/$sh-$m.gguf" --type "$m"
        models+=("$sh-$m")
    done
    rm "$tmp/ckpt.bin" "$tmp/tok.bin"
done

# get KEY CMD...: the value of the "KEY value" line CMD prints.
get() {
    local key=$1
    shift
    "$@" | awk -v k="$key" '$1 == k { print $2 }'
}

max() { awk -v a="$1" -v b="$2" 'BEGIN { print (b > a) ? b : a }'; }
min() { awk -v a="$1" -v b="$2" 'BEGIN { print (a == 0 || b < a) ? b : a }'; }

declare -A ours llama rel
# llama_run MODEL THREADS: one llama.cpp run (-r 1) of the prompt and decode
# tests on the same file; prints "pp tg" (tok/s).
llama_run() {
    local csv
    csv=$("$LLAMA_BENCH" -m "$tmp/$1.gguf" -t "$2" -p "$TOKENS" -n "$TOKENS" -r 1 -o csv)
    # avg_ts of the prompt row (n_gen 0) and the decode row (n_prompt 0).
    awk -F, '
        NR == 1 { for (i = 1; i <= NF; i++) { gsub(/"/, "", $i); c[$i] = i } next }
        { gsub(/"/, "") }
        $c["n_gen"] == 0 { pp = $c["avg_ts"] }
        $c["n_prompt"] == 0 { tg = $c["avg_ts"] }
        END { print pp, tg }' <<<"$csv"
}
# median of the numbers on stdin, one a line
median() {
    sort -g | awk '{ v[NR] = $1 } END {
        print NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
echo "== machine: $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)"
printf '\n%-16s %-7s %8s %8s %10s %10s %12s %9s %9s %8s\n' model threads \
    tok/s "tok/s*" "MB/token" "bw GB/s" "GB/s used*" "of bound" "bound*" \
    "prompt"
for m in "${models[@]}"; do
    info=$("$bin" gen "$tmp/$m.gguf" 1 8)
    bytes=$(awk '$1 == "weight_bytes_per_token" { print $2 }' <<<"$info")
    for t in 1 2; do
        # Bandwidth is measured next to each run: on a shared host it moves
        # with the neighbours' load, and the ratio should compare like with
        # like.
        bw=0 tps=0 fast=0 prompt=0 lpp=0 ltg=0 rpp="" rtg=""
        for _ in $(seq "$REPEAT"); do
            bw=$(max "$bw" "$(get bandwidth_gbs "$bin" bw "$t")")
            out=$("$bin" gen "$tmp/$m.gguf" "$t" "$TOKENS")
            otg=$(awk '$1 == "tok_per_s" { print $2 }' <<<"$out")
            opp=$(awk '$1 == "prompt_tok_per_s" { print $2 }' <<<"$out")
            tps=$(max "$tps" "$otg")
            fast=$(max "$fast" "$(awk '$1 == "tok_per_s_p10" { print $2 }' <<<"$out")")
            prompt=$(max "$prompt" "$opp")
            # llama.cpp right after ours in the same round: each round's
            # ratio compares runs that shared the same minutes.
            if [ -n "${LLAMA_BENCH:-}" ]; then
                read -r pp tg < <(llama_run "$m" "$t")
                lpp=$(max "$lpp" "$pp")
                ltg=$(max "$ltg" "$tg")
                rpp+="$(awk -v a="$opp" -v b="$pp" 'BEGIN { print a / b }')"$'\n'
                rtg+="$(awk -v a="$otg" -v b="$tg" 'BEGIN { print a / b }')"$'\n'
            fi
        done
        ours[$m.$t.tg]=$tps
        ours[$m.$t.pp]=$prompt
        if [ -n "${LLAMA_BENCH:-}" ]; then
            llama[$m.$t.pp]=$lpp
            llama[$m.$t.tg]=$ltg
            rel[$m.$t.pp]=$(printf %s "$rpp" | median)
            rel[$m.$t.tg]=$(printf %s "$rtg" | median)
        fi
        awk -v m="$m" -v t="$t" -v tps="$tps" -v f="$fast" -v b="$bytes" \
            -v bw="$bw" -v p="$prompt" \
            'BEGIN { printf "%-16s %-7s %8.1f %8.1f %10.1f %10.2f %12.2f %8.0f%% %8.0f%% %8.1f\n",
                            m, t, tps, f, b / 1e6, bw, f * b / 1e9,
                            100 * tps * b / 1e9 / bw, 100 * f * b / 1e9 / bw, p }'
    done
done
echo
echo "tok/s: whole run; tok/s*: from the 10th-percentile token time, the"
echo "speed when no other process takes the CPU (GB/s used* and bound* use"
echo "it). of bound = tok/s x MB/token / bandwidth (bw GB/s: streaming"
echo "reads at the same thread count, measured between the runs)."
echo "prompt: tok/s for a $TOKENS-token prompt, run in batches of up to 64."
echo "MB/token counts every matrix once, the embedding table in full since"
echo "it is also the classifier (a Q8_0 matrix as the copy the AVX-512"
echo "level repacks it to, its scales padded to whole lines); the KV cache read by"
echo "attention is not."

echo
echo "== five sequences decoded together (1 thread, $TOKENS steps; one and"
echo "   five alternate in each of $ROUNDS rounds, the ratio is the median of"
echo "   the rounds' ratios, so both sides of each ratio share the minutes)"
for m in 110m-q8_0 110m-q4_k_m; do
    ratios=()
    for r in $(seq "$ROUNDS"); do
        one=$(get batch_tok_per_s "$bin" batch "$tmp/$m.gguf" 1 "$TOKENS" 1)
        five=$(get batch_tok_per_s "$bin" batch "$tmp/$m.gguf" 1 "$TOKENS" 5)
        ratio=$(awk -v a="$one" -v b="$five" 'BEGIN { printf "%.2f", b / a }')
        ratios+=("$ratio")
        echo "$m round $r: one $one tok/s, five $five tok/s (${ratio}x), load $(cut -d' ' -f1 /proc/loadavg)"
    done
    awk -v m="$m" -v med="$(printf '%s\n' "${ratios[@]}" | median)" -v n="$ROUNDS" \
        'BEGIN { printf "%-12s five together / one sequence: median %.2fx of %d rounds\n", m, med, n }'
done

echo
echo "== time to first token, 400-token prompt (1 thread)"
for m in 110m-q8_0 110m-q4_k_m; do
    cold=0 warm=0
    for _ in $(seq "$REPEAT"); do
        out=$("$bin" ttft "$tmp/$m.gguf" 1 400 350)
        cold=$(min "$cold" "$(awk '$1 == "ttft_cold_ms" { print $2 }' <<<"$out")")
        warm=$(min "$warm" "$(awk '$1 == "ttft_cached_ms" { print $2 }' <<<"$out")")
    done
    echo "$m: cold $cold ms; 350-token system prompt cached: $warm ms"
done

if [ -n "${LLAMA_BENCH:-}" ]; then
    echo
    echo "== llama.cpp: $LLAMA_BENCH (prompt $TOKENS, decode $TOKENS; one"
    echo "   llama-bench run right after each of ours, on the same file and"
    echo "   thread count, in each of the $REPEAT rounds; t/s: the best round of"
    echo "   each; ratio: the median of the rounds' ratios, ours / llama.cpp)"
    printf '%-16s %-7s %10s %10s %8s %10s %10s %8s\n' model threads \
        "ll pp t/s" "our pp" ratio "ll tg t/s" "our tg" ratio
    for m in "${models[@]}"; do
        for t in 1 2; do
            awk -v m="$m" -v t="$t" -v lp="${llama[$m.$t.pp]}" -v lt="${llama[$m.$t.tg]}" \
                -v op="${ours[$m.$t.pp]}" -v ot="${ours[$m.$t.tg]}" \
                -v rp="${rel[$m.$t.pp]}" -v rt="${rel[$m.$t.tg]}" \
                'BEGIN { printf "%-16s %-7s %10.1f %10.1f %7.2fx %10.1f %10.1f %7.2fx\n",
                                m, t, lp, op, rp, lt, ot, rt }'
        done
    done
fi
