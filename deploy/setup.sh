#!/usr/bin/env bash
# Installs what Aisle needs on a Debian bookworm machine, idempotently:
# Debian packages that are missing, then libfaiss_c.a, which Debian ships
# headers for but no library, built from Debian's own faiss source package,
# and redismodule.h (the Redis module API that services/profile's
# aisle_redis.so is built against), which no Debian -dev package ships,
# from Debian's redis source package, the version redis-server runs.
# Every step checks before it acts, so a second run does nothing.
set -euo pipefail

PACKAGES=(
  bazel-bootstrap gcc g++ dpkg-dev
  librdkafka-dev libhiredis-dev libfaiss-dev libopenblas-dev
  libprotobuf-c-dev protobuf-c-compiler protobuf-compiler libpcre2-dev
  libgrpc-dev grpc-proto
  libssl-dev openssl clang libclang-rt-14-dev
  redis-server nghttp2-client libxgboost-dev
  python3-grpcio python3-protobuf python3-confluent-kafka
  libmicrohttpd-dev libyaml-dev python3-yaml chromium python3-grpc-tools
)
FAISS_C_LIB=/usr/local/lib/libfaiss_c.a
REDIS_MODULE_H=/usr/local/include/redismodule.h

log() { printf 'setup: %s\n' "$*" >&2; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  log "installing ${missing[*]}"
  as_root apt-get update -q >/dev/null
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >/dev/null
fi

# apt-get source needs a deb-src entry for the mirror apt already uses.
need_deb_src() {
  local src=/etc/apt/sources.list.d/aisle-deb-src.sources mirror
  grep -rqs '^Types:.*deb-src\|^deb-src' /etc/apt/sources.list /etc/apt/sources.list.d/ && return
  mirror=$(grep -hm1 '^URIs:' /etc/apt/sources.list.d/debian.sources 2>/dev/null | awk '{print $2}')
  as_root tee "$src" >/dev/null <<SRC
Types: deb-src
URIs: ${mirror:-http://deb.debian.org/debian}
Suites: bookworm
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
  as_root apt-get update -q >/dev/null
}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

if [ ! -f "$REDIS_MODULE_H" ]; then
  log "installing $REDIS_MODULE_H from Debian's redis source package"
  need_deb_src
  (cd "$work" && apt-get source -q --download-only redis >/dev/null 2>&1)
  tar -xzf "$work"/redis_*.orig.tar.gz -C "$work" --wildcards '*/src/redismodule.h'
  as_root install -m 0644 "$work"/redis-*/src/redismodule.h "$REDIS_MODULE_H"
fi

if [ ! -f "$FAISS_C_LIB" ]; then
  log "building $FAISS_C_LIB from Debian's faiss source package"
  need_deb_src
  (cd "$work" && apt-get source -q faiss >/dev/null 2>&1)
  cdir=$(echo "$work"/faiss-*/c_api)
  objs=()
  for f in "$cdir"/*.cpp "$cdir"/impl/*.cpp "$cdir"/utils/*.cpp; do
    o="$work/$(basename "$f" .cpp).o"
    g++ -std=c++17 -O2 -DNDEBUG -fPIC -fopenmp -I"$cdir/.." -c "$f" -o "$o"
    objs+=("$o")
  done
  ar rcs "$work/libfaiss_c.a" "${objs[@]}"
  as_root install -m 0644 "$work/libfaiss_c.a" "$FAISS_C_LIB"
  log "installed $FAISS_C_LIB"
fi
