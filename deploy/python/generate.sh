#!/bin/sh
# Regenerates the client's protobuf and gRPC modules from proto/ (run after
# changing proto/aisle/v1/*.proto; tests/integration/pyclient_test.py fails
# while they are stale). Debian's protoc writes the messages (protobuf 3.21,
# as python3-protobuf); python3-grpc-tools writes only the gRPC stub.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
out=${1:-$here/aisle_client/_gen}
mkdir -p "$out"
protoc -I"$root/proto" --python_out="$out" "$root/proto/aisle/v1/aisle.proto" \
  "$root/proto/aisle/v1/events.proto" "$root/proto/aisle/v1/experiments.proto"
/usr/bin/python3 -m grpc_tools.protoc -I"$root/proto" --grpc_python_out="$out" \
  "$root/proto/aisle/v1/aisle.proto"
touch "$out/aisle/__init__.py" "$out/aisle/v1/__init__.py"
