#!/usr/bin/env bash
# Offline quality bench: trains on TRAIN and evaluates on TEST (or, when
# TEST is absent, on a validation split carved from TRAIN so no test set is
# touched), printing Recall/NDCG@{10,20,50}, training time and peak memory.
#
#   bash bench/quality/run.sh TRAIN [TEST] [-- extra `embed train` options]
#
# Environment: FORMAT (lightgcn|tsv|csv, default from the file name),
# HOLDOUT (default 0.2), SEED (default 1), OUT (snapshot root, default a
# temporary directory that is removed afterwards).
# The online half (replay through Kafka into Redis, Recommend over gRPC)
# plugs in as another stage reading the same snapshot: see online_stage.
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
  bazel build -c opt //embed:aisle-embed >&2
  BIN=$(bazel info -c opt bazel-bin 2>/dev/null)/embed/aisle-embed
}

# Trains into $OUT; with no TEST the training sees only the carved split.
train_stage() {
  local split=()
  [ -z "$TEST" ] && split=(--holdout "$HOLDOUT" --seed "$SEED")
  echo "== train: $TRAIN" >&2
  "$BIN" train --input "$TRAIN" "${FMT[@]}" --out "$OUT" "${split[@]}" --quiet "${EXTRA[@]}"
}

offline_eval_stage() {
  local target=(--test "$TEST")
  [ -z "$TEST" ] && target=(--holdout "$HOLDOUT" --seed "$SEED")
  echo "== offline eval: ${TEST:-holdout $HOLDOUT of TRAIN (seed $SEED)}" >&2
  "$BIN" eval --train "$TRAIN" "${target[@]}" "${FMT[@]}" --model "$OUT" --k 10,20,50 --quiet
}

# Placeholder for the online half: replay TRAIN through Kafka into Redis,
# load the newest snapshot under $OUT in the server, and score the same
# users over gRPC Recommend.
online_stage() { :; }

build_stage
train_stage
offline_eval_stage
online_stage
