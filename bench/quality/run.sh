#!/usr/bin/env bash
# Quality bench: trains on TRAIN and evaluates on TEST (or, when TEST is
# absent, on a validation split carved from TRAIN so no test set is
# touched), printing Recall/NDCG@{10,20,50}, training time and peak memory,
# offline and then online through the served path (Kafka, Redis, gRPC).
#
#   bash bench/quality/run.sh TRAIN [TEST] [-- extra `embed train` options]
#
# Environment: FORMAT (lightgcn|tsv|csv, default from the file name),
# HOLDOUT (default 0.2), SEED (default 1), TUNE (1: `train --tune`, the
# parameters searched on a carve of the training data; with no TEST the
# search sees only the carve's train part; default 0, the method's
# defaults; since session 22 TUNE=1 scores higher on both Gowalla carves,
# at twice the serving dimension: embed/README.md), OUT (snapshot root, default a
# temporary directory that is removed afterwards), SERVE_OPTS (the online
# pass's serving setting, default "--ivf-threshold 0": exact search; e.g.
# "--ivf-threshold 1000 --nprobe 8"; several separated by ';' are served in
# turn against the one replay, "@PATH ..." by another aisle binary). The
# online pass scores every test user with 64 calls in flight, then measures
# calls/s and p50/p99 with the C load generator over every test user, and
# the highest offered rate whose p99 stays under SLO_MS (10; 0 skips that
# search) (ONLINE_SCORES=0 online.py ...: that measurement alone).
set -euo pipefail

usage() { echo "usage: bash bench/quality/run.sh TRAIN [TEST] [-- train options]" >&2; exit 2; }
[ $# -ge 1 ] || usage
TRAIN=$(realpath "$1"); shift
TEST=""
if [ $# -ge 1 ] && [ "$1" != "--" ]; then TEST=$(realpath "$1"); shift; fi
[ $# -ge 1 ] && { [ "$1" = "--" ] || usage; shift; }
EXTRA=("$@")

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
HOLDOUT=${HOLDOUT:-0.2}
SEED=${SEED:-1}
FMT=()
[ -n "${FORMAT:-}" ] && FMT=(--format "$FORMAT")
if [ -z "${OUT:-}" ]; then
  OUT=$(mktemp -d)
  trap 'rm -rf "$OUT"' EXIT
fi

build_stage() {
  . bench/lib.sh
  bench_aisle_bin "$OUT"
  BIN=$AISLE_BIN
}

# Trains into $OUT; with no TEST the training sees only the carved split.
train_stage() {
  local opts=()
  [ -z "$TEST" ] && opts=(--holdout "$HOLDOUT" --seed "$SEED")
  [ "${TUNE:-0}" = 1 ] && opts+=(--tune)
  echo "== train: $TRAIN${opts[*]:+ (${opts[*]})}" >&2
  "$BIN" embed train --input "$TRAIN" "${FMT[@]}" --out "$OUT" "${opts[@]}" --quiet "${EXTRA[@]}"
}

offline_eval_stage() {
  local target=(--test "$TEST")
  [ -z "$TEST" ] && target=(--holdout "$HOLDOUT" --seed "$SEED")
  echo "== offline eval: ${TEST:-holdout $HOLDOUT of TRAIN (seed $SEED)}" >&2
  "$BIN" embed eval --train "$TRAIN" "${target[@]}" "${FMT[@]}" --model "$OUT" --k 10,20,50 \
    --quiet | tee "$OUT/offline.txt"
}

# The online half: replay the train interactions through Kafka into Redis
# profiles, serve the snapshot, and score the same users over gRPC.
online_stage() {
  local tr=$TRAIN te=$TEST
  if [ -z "$TEST" ]; then
    tr=$OUT/split-train.txt
    te=$OUT/split-test.txt
    "$BIN" embed split --input "$TRAIN" "${FMT[@]}" --holdout "$HOLDOUT" --seed "$SEED" \
      --train-out "$tr" --test-out "$te"
  fi
  echo "== online: replay through Kafka and Redis, Recommend over gRPC" >&2
  /usr/bin/python3 bench/quality/online.py "$BIN" "$OUT" "$tr" "$te" "$OUT/offline.txt"
}

build_stage
train_stage
offline_eval_stage
online_stage
