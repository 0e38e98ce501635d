#!/usr/bin/env bash
# Serving frontier of the learned snapshot: online Recall@20 against
# calls/s and p50/p99 for each serving setting of each serving form, on a
# validation carve of TRAIN (no test set is touched), in one command.
#
# For each serving dimension in DIMS it trains the model on the carve's
# train part (`embed train --holdout --serve-dim D`; 0 publishes the
# vectors as trained), scores it offline (`embed eval`), then serves it
# under every setting of SETTINGS against one replay of the carve's train
# interactions (bench/quality/online.py: every test user scored over
# gRPC, then the C load generator closed loop, 64 calls in flight, beside
# the empty method, and the highest offered rate whose p99 stays under
# SLO_MS, 10 by default: the column p99<10/s). The table it ends with
# gives each row's Recall@20 against the first snapshot's offline figure
# (the full model's, with the default DIMS), which is the figure the
# served bound (1 %) is about.
#
#   bash bench/quality/frontier.sh TRAIN [-- extra `embed train` options]
#
# Environment: FORMAT, HOLDOUT (0.2), SEED (1) as for run.sh; DIMS
# (default "0 256 128"); SETTINGS (';'-separated `aisle serve` options,
# an empty one being serve's defaults with the snapshot's probed list
# count; default ";--nprobe 1;--nprobe 4;--max-neighbors 300;--ivf-threshold 0");
# SLO_MS (the p99 bound of the rate search, 10; 0 skips it); OUT (a
# directory that keeps the snapshots and logs; default a temporary
# one removed afterwards). Takes about 3 minutes a setting on 2 cores (1
# without the p99 search: SLO_MS=0).
set -euo pipefail

usage() { echo "usage: bash bench/quality/frontier.sh TRAIN [-- train options]" >&2; exit 2; }
[ $# -ge 1 ] || usage
TRAIN=$(realpath "$1"); shift
[ $# -ge 1 ] && { [ "$1" = "--" ] || usage; shift; }
EXTRA=("$@")

cd "$(dirname "$0")/../.."
HOLDOUT=${HOLDOUT:-0.2}
SEED=${SEED:-1}
DIMS=${DIMS:-0 256 128}
SETTINGS=${SETTINGS:-;--nprobe 1;--nprobe 4;--max-neighbors 300;--ivf-threshold 0}
FMT=()
[ -n "${FORMAT:-}" ] && FMT=(--format "$FORMAT")
if [ -z "${OUT:-}" ]; then
  OUT=$(mktemp -d)
  trap 'rm -rf "$OUT"' EXIT
fi
mkdir -p "$OUT"
CARVE=(--holdout "$HOLDOUT" --seed "$SEED")

. bench/lib.sh
bench_aisle_bin "$OUT"
"$AISLE_BIN" embed split --input "$TRAIN" "${FMT[@]}" "${CARVE[@]}" \
  --train-out "$OUT/split-train.txt" --test-out "$OUT/split-test.txt"

# summarize DIM LOG BASE_R20: one table row per setting in online.py's LOG.
summarize() {
  awk -v dim="$1" -v base="$3" '
    function flush() {
      if (closed != "")
        printf "%-5s %-32s %7.4f %+7.2f%% %8d %7.1f %7.1f %8s %8d\n", dim, set, r20,
               100 * (r20 - base) / base, closed, p50, p99, slo, empty
      closed = ""
    }
    /^serving setting:/ { flush(); sub(/^serving setting: */, ""); set = $0 == "" ? "(defaults)" : $0; slo = "-" }
    /^ +20 / { r20 = $2 }
    /empty method/ { empty = $3 }
    /Recommend, closed loop/ { closed = $4; p50 = $7; p99 = $10 }
    /Recommend, p99 under/ { slo = $6 == "none:" ? 0 : $6 }
    END { flush() }' "$2"
}

rows=$OUT/rows.txt
: > "$rows"
base=""
for d in $DIMS; do
  snap=$OUT/dim$d
  echo "== dim $d: train on the carve, then offline and online" >&2
  sd=()
  [ "$d" != 0 ] && sd=(--serve-dim "$d")
  "$AISLE_BIN" embed train --input "$TRAIN" "${FMT[@]}" --out "$snap" "${CARVE[@]}" \
    "${sd[@]}" --quiet "${EXTRA[@]}"
  "$AISLE_BIN" embed eval --train "$TRAIN" "${FMT[@]}" "${CARVE[@]}" --model "$snap" \
    --k 10,20,50 --quiet > "$snap.offline.txt"
  [ -z "$base" ] && base=$(awk '$1 == 20 { print $2 }' "$snap.offline.txt")
  SERVE_OPTS=$SETTINGS /usr/bin/python3 bench/quality/online.py "$AISLE_BIN" "$snap" \
    "$OUT/split-train.txt" "$OUT/split-test.txt" "$snap.offline.txt" | tee "$snap.online.txt"
  summarize "$d" "$snap.online.txt" "$base" >> "$rows"
done

echo
echo "serving frontier (dim 0: as trained; R@20 online, and against dim ${DIMS%% *}'s offline $base)"
printf "%-5s %-32s %7s %8s %8s %7s %7s %8s %8s\n" dim setting R@20 vs calls/s p50_ms p99_ms "p99<${SLO_MS:-10}/s" empty/s
cat "$rows"
