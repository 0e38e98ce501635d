# Sourced by the bench scripts: installs what is missing, builds the aisle
# binary optimized, and sets AISLE_BIN to a private copy of it, because
# bazel-bin moves whenever another configuration is built. The copy goes
# into DIR when one is given (the caller cleans it), else into a temporary
# directory removed on exit.
#   bench_aisle_bin [DIR]
bench_aisle_bin() {
  local dir=${1:-}
  bash deploy/setup.sh
  bazel build --color=no --curses=no --noshow_progress -c opt //:aisle >&2
  if [ -z "$dir" ]; then
    dir=$(mktemp -d)
    trap 'rm -rf "'"$dir"'"' EXIT
  fi
  cp "$(bazel info -c opt bazel-bin 2>/dev/null)/aisle" "$dir/aisle"
  export AISLE_BIN=$dir/aisle
}
