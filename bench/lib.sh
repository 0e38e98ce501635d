# Sourced by the bench scripts: installs what is missing, builds the aisle
# binary and the load generator (bench/recommend/load.c) optimized, and sets
# AISLE_BIN and AISLE_LOAD to private copies of them, because bazel-bin
# moves whenever another configuration is built. The copies go into DIR
# when one is given (the caller cleans it), else into a temporary directory
# removed on exit.
#   bench_aisle_bin [DIR]
bench_aisle_bin() {
  local dir=${1:-} bin
  bash deploy/setup.sh
  bazel build --color=no --curses=no --noshow_progress -c opt //:aisle \
    //bench/recommend:load >&2
  if [ -z "$dir" ]; then
    dir=$(mktemp -d)
    trap 'rm -rf "'"$dir"'"' EXIT
  fi
  bin=$(bazel info -c opt bazel-bin 2>/dev/null)
  cp "$bin/aisle" "$dir/aisle"
  cp "$bin/bench/recommend/load" "$dir/load"
  export AISLE_BIN=$dir/aisle AISLE_LOAD=$dir/load
}
