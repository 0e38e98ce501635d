"""The one shape every integration test has: a Python unittest file run by
Debian's python3 (run_python.sh) against the aisle binary, with the shared
helpers and the protos it compiles for its gRPC and Kafka clients.

Every redis-server a test starts loads aisle_redis.so (the profile write as
a native command) unless redis_module is False, which runs the same test
file (src, default the test's name) against the Lua script's write; such a
variant is tagged "lua_variant" (deploy/run.sh leaves those out of its
ASan pass). shard_count splits a file of independent tests over that many
shards (aisle_env.main deals them out), so a long file is not one long
pole at the end of a run."""

_MODULE = "//services/profile:aisle_redis.so"

def aisle_py_test(name, extra_data = [], size = "medium", src = None, redis_module = True,
                  shard_count = None):
    src = src or name
    env = {"AISLE_BIN": "$(location //:aisle)"}
    if redis_module:
        env["AISLE_REDIS_MODULE"] = "$(location %s)" % _MODULE
    native.sh_test(
        name = name,
        size = size,
        srcs = ["run_python.sh"],
        args = ["$(location %s.py)" % src],
        data = [
            "aisle_env.py",
            src + ".py",
            _MODULE,
            "//:aisle",
            "//proto:aisle/v1/aisle.proto",
            "//proto:aisle/v1/events.proto",
            "//proto:aisle/v1/experiments.proto",
        ] + extra_data,
        env = env,
        shard_count = shard_count,
        tags = [] if redis_module else ["lua_variant"],
    )
