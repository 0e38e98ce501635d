#!/usr/bin/python3
"""Shop latency (see run.sh): time to the first chunk (the products) and to
the last (done) over N sequential calls, FAST and CONTEMPLATING, with the
deterministic composer and, when shared/models/stories260K is beside the
workspace, with the model writing the text. Prints figures; asserts
nothing."""

import argparse
import os
import statistics
import subprocess
import sys
import time

import grpc

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "integration"))
import aisle_env  # noqa: E402

QUERIES = ["a gift for a runner under $50", "coffee below 40 dollars", "something for yoga",
           "camping gear between $20 and $90", "anything nice"]


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p / 100))]


def stories_dir():
    if os.environ.get("AISLE_SHARED"):
        return os.path.join(os.environ["AISLE_SHARED"], "models", "stories260K")
    return os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(HERE))),
                        "shared", "models", "stories260K")


def measure(pb, addr, mode, n, users):
    ch = grpc.insecure_channel(addr)
    call = ch.unary_stream("/aisle.v1.Recommender/Shop",
                           request_serializer=lambda m: m.SerializeToString(),
                           response_deserializer=pb.ShopChunk.FromString)
    first, done, chunks = [], [], []
    for i in range(n):
        req = pb.ShopRequest(user_id="u%05d" % (i % users), query=QUERIES[i % len(QUERIES)],
                             limit=5, mode=mode)
        t0 = time.perf_counter()
        k = 0
        for c in call(req, timeout=30):
            if k == 0:
                first.append(time.perf_counter() - t0)
            k += 1
            if c.done:
                done.append(time.perf_counter() - t0)
        chunks.append(k)
    ch.close()
    return first, done, statistics.mean(chunks)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--items", type=int, default=5000)
    ap.add_argument("--users", type=int, default=200)
    ap.add_argument("--calls", type=int, default=200, help="calls per mode and server")
    a = ap.parse_args()
    pb, _ = aisle_env.protos()
    procs = aisle_env.Procs()
    try:
        _, redis = procs.redis()
        _, brokers = procs.kafka()
        subprocess.run([aisle_env.aisle_binary(), "synth", "--kafka-brokers", brokers,
                        "--items", str(a.items), "--users", str(a.users)],
                       check=True, stdout=subprocess.DEVNULL)
        servers = [("no model", [])]
        st = stories_dir()
        if os.path.exists(os.path.join(st, "stories260K.bin")):
            servers.append(("stories260K", ["--model", os.path.join(st, "stories260K.bin"),
                                            "--tokenizer", os.path.join(st, "tok512.bin")]))
        else:
            print("stories260K not found at %s: model rows skipped" % st)
        procs.ingest(brokers, redis, ["--log-level", "warn"])
        addrs = []
        for name, extra in servers:
            _, addr = procs.serve(brokers, redis, 32, extra + ["--log-level", "warn"])
            health_ch = grpc.insecure_channel(addr)
            aisle_env.wait_for(lambda: aisle_env.healthy(health_ch),
                               300, "the catalog to load", 0.2)
            addrs.append((name, addr))
        time.sleep(2)  # let ingest apply the shoppers' signals
        print("%d items, %d shoppers, %d sequential calls per row (limit 5)\n" %
              (a.items, a.users, a.calls))
        print("%-12s %-14s %10s %10s %10s %10s %8s" % ("text by", "mode", "first p50",
                                                      "first p99", "done p50", "done p99",
                                                      "chunks"))
        for name, addr in addrs:
            for mname, mode in (("FAST", pb.SHOP_MODE_FAST),
                                ("CONTEMPLATING", pb.SHOP_MODE_CONTEMPLATING)):
                measure(pb, addr, mode, 10, a.users)  # warm connections and caches
                first, done, chunks = measure(pb, addr, mode, a.calls, a.users)
                print("%-12s %-14s %8.2fms %8.2fms %8.2fms %8.2fms %8.1f" % (
                    name, mname, 1e3 * pct(first, 50), 1e3 * pct(first, 99),
                    1e3 * pct(done, 50), 1e3 * pct(done, 99), chunks))
    finally:
        procs.close()


if __name__ == "__main__":
    main()
