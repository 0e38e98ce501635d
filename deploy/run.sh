#!/usr/bin/env bash
# The two entry points of the README, on a fresh Debian bookworm machine:
#
#   bash deploy/run.sh demo [aisle demo flags]   install, build, run the demo
#   bash deploy/run.sh test                      install, build, run every test
#
# Both first install whatever is missing (deploy/setup.sh, idempotent). The
# test run builds everything, runs the suite plainly and again under
# ASan+UBSan, and ends with one line "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."

BAZEL_FLAGS=(--color=no --curses=no --noshow_progress)

usage() {
  echo "usage: bash deploy/run.sh demo [FLAGS] | test" >&2
  exit 2
}

[ $# -ge 1 ] || usage
mode=$1
shift
bash deploy/setup.sh || { echo "setup failed" >&2; exit 1; }

case "$mode" in
demo)
  bazel build "${BAZEL_FLAGS[@]}" -c opt //:aisle || exit 1
  exec bazel-bin/aisle demo "$@"
  ;;
test)
  [ $# -eq 0 ] || usage
  passed=0
  failed=0
  # One pass per configuration; a target counts once per pass.
  for config in "" "--config=asan"; do
    log=$(mktemp)
    echo "== bazel test //... ${config:-(plain)}"
    bazel test "${BAZEL_FLAGS[@]}" $config --test_summary=short //... 2>&1 | tee "$log"
    p=$(grep -cE '^//[^ ]+ +(\(cached\) )?PASSED' "$log")
    f=$(grep -cE '^//[^ ]+ +(\(cached\) )?(FAILED|TIMEOUT|NO STATUS|FLAKY|INCOMPLETE)' "$log")
    # A build failure runs no test: count it as a failure, not silence.
    if grep -qE '^(ERROR|FAILED: Build did NOT complete)' "$log" && [ "$f" -eq 0 ]; then
      f=1
    fi
    passed=$((passed + p))
    failed=$((failed + f))
    rm -f "$log"
  done
  echo "$passed passed, $failed failed"
  [ "$failed" -eq 0 ]
  ;;
*)
  usage
  ;;
esac
