"""The one shape every integration test has: a Python unittest file run by
Debian's python3 (run_python.sh) against the aisle binary, with the shared
helpers and the protos it compiles for its gRPC and Kafka clients."""

def aisle_py_test(name, extra_data = [], size = "medium"):
    native.sh_test(
        name = name,
        size = size,
        srcs = ["run_python.sh"],
        args = ["$(location %s.py)" % name],
        data = [
            "aisle_env.py",
            name + ".py",
            "//:aisle",
            "//proto:aisle/v1/aisle.proto",
            "//proto:aisle/v1/events.proto",
            "//proto:aisle/v1/experiments.proto",
        ] + extra_data,
        env = {"AISLE_BIN": "$(location //:aisle)"},
    )
