#!/usr/bin/env bash
# The two entry points of the README, on a fresh Debian bookworm machine:
#
#   bash deploy/run.sh demo [aisle demo flags]   install, build, run the demo
#   bash deploy/run.sh test                      install, build, run every test
#   bash deploy/run.sh fuzz [SECONDS]            every fuzz target for SECONDS each (60)
#
# Both first install whatever is missing (deploy/setup.sh, idempotent). The
# test run builds everything, runs the suite plainly, again under
# ASan+UBSan, and its thread-safe part under TSan, mutates each fuzz target
# for AISLE_CI_FUZZ_SECONDS (10), and ends with one line "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."

BAZEL_FLAGS=(--color=no --curses=no --noshow_progress)

usage() {
  echo "usage: bash deploy/run.sh demo [FLAGS] | test | fuzz [SECONDS]" >&2
  exit 2
}

# Runs each fuzz target (tests tagged "fuzz") under libFuzzer for $1 seconds
# from its corpus in the tree, counting targets in fuzz_passed and
# fuzz_failed. New inputs go to a scratch corpus, never into the tree; a
# crash stops that target with the input's path, to be fixed and then kept
# in the target's corpus/ as a regression test.
fuzz_passed=0
fuzz_failed=0
fuzz() {
  local seconds=$1 base="$HOME/.cache/aisle-fuzz" out
  out=$(mktemp -d)
  local targets
  targets=$(bazel query --output=label 'attr(tags, "\bfuzz\b", tests(//...))' 2>/dev/null)
  # No convenience symlinks: they would point the workspace's bazel-* links at
  # this output base, and the ordinary build would then read them as sources.
  if ! bazel --output_base="$base" build "${BAZEL_FLAGS[@]}" --config=fuzz --symlink_prefix=/ $targets; then
    fuzz_failed=$((fuzz_failed + 1))
    return 1
  fi
  local bin
  bin=$(bazel --output_base="$base" info --config=fuzz bazel-bin 2>/dev/null)
  for t in $targets; do
    local pkg=${t#//}; pkg=${pkg%%:*}; local name=${t##*:}
    mkdir -p "$out/$name"
    echo "== fuzz $t for ${seconds}s"
    # TEST_TMPDIR: the scratch files fuzzfile.c writes per process go here too.
    if ! TEST_TMPDIR="$out" "$bin/$pkg/$name" -max_total_time="$seconds" -artifact_prefix="$out/$name/" \
        "$out/$name" "$pkg/corpus/$name" >"$out/$name.log" 2>&1; then
      fuzz_failed=$((fuzz_failed + 1))
      tail -40 "$out/$name.log"
      echo "fuzz: $t FAILED; the input is in $out/$name/ (crash-*)"
    else
      fuzz_passed=$((fuzz_passed + 1))
      grep -E '^#[0-9]+[[:space:]]+DONE' "$out/$name.log" | tail -1
    fi
  done
  [ "$fuzz_failed" -eq 0 ] || return 1
  rm -rf "$out" # kept only for a crash's input
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
  # One pass per configuration; a target counts once per pass. The plain
  # pass builds everything; the sanitizer passes build only what their
  # tests need (--build_tests_only: no bench or tool binary is run under
  # them). The ASan pass leaves out the integration tests' Lua variants
  # (tagged "lua_variant"; tests/integration/BUILD says why the module
  # variants cover them there). The ThreadSanitizer pass takes the tests
  # tagged "tsan" (those that need no gRPC library, whose own threads TSan
  # cannot see into).
  tsan_targets=$(bazel query --output=label 'attr(tags, "\btsan\b", tests(//...))' 2>/dev/null)
  for config in "" "--config=asan" "--config=tsan"; do
    log=$(mktemp)
    targets=//...
    flags=()
    [ -n "$config" ] && flags=(--build_tests_only)
    [ "$config" = "--config=asan" ] && flags+=(--test_tag_filters=-lua_variant)
    [ "$config" = "--config=tsan" ] && targets=$tsan_targets
    echo "== bazel test ${config:-(plain)}"
    bazel test "${BAZEL_FLAGS[@]}" $config "${flags[@]}" --test_summary=short $targets 2>&1 |
      tee "$log"
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
  # Then every fuzz target mutates its corpus for a short while (a target
  # counts once), so a decoder change meets new inputs in every CI run.
  echo "== fuzz, ${AISLE_CI_FUZZ_SECONDS:-10} s a target"
  fuzz "${AISLE_CI_FUZZ_SECONDS:-10}"
  passed=$((passed + fuzz_passed))
  failed=$((failed + fuzz_failed))
  echo "$passed passed, $failed failed"
  [ "$failed" -eq 0 ]
  ;;
fuzz)
  [ $# -le 1 ] || usage
  fuzz "${1:-60}"
  echo "$fuzz_passed passed, $fuzz_failed failed"
  [ "$fuzz_failed" -eq 0 ]
  ;;
*)
  usage
  ;;
esac
