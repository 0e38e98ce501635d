#!/usr/bin/python3
"""Benchmark of the serving path (see run.sh). Starts redis-server, the Kafka
mock cluster, aisle serve and aisle ingest; loads a generated catalog and
shoppers through Kafka; drives Recommend with h2load; then measures how long
a new signal takes to change a user's recommendations."""

import argparse
import os
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import uuid

import grpc
from confluent_kafka import Producer

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "..", "tests", "integration"))
import aisle_env  # noqa: E402


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p / 100))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--items", type=int, default=100000)
    ap.add_argument("--users", type=int, default=5000)
    ap.add_argument("--signals-per-user", type=int, default=20)
    ap.add_argument("--dim", type=int, default=32)
    ap.add_argument("--requests", type=int, default=20000)
    ap.add_argument("--connections", type=int, default=8)
    ap.add_argument("--streams", type=int, default=4, help="concurrent streams per connection")
    ap.add_argument("--threads", type=int, default=4, help="server worker threads")
    ap.add_argument("--delay-trials", type=int, default=50)
    a = ap.parse_args()
    pb, ev = aisle_env.protos()
    procs = aisle_env.Procs()
    try:
        _, redis = procs.redis()
        _, brokers = procs.kafka(partitions=32)
        t0 = time.time()
        subprocess.run([aisle_env.aisle_binary(), "synth", "--kafka-brokers", brokers,
                        "--items", str(a.items), "--users", str(a.users),
                        "--signals-per-user", str(a.signals_per_user), "--dim", str(a.dim)],
                       check=True, stdout=subprocess.DEVNULL)
        print("produced %d items and %d signals in %.1f s" %
              (a.items, a.users * a.signals_per_user, time.time() - t0))
        t0 = time.time()
        serve, addr = procs.serve(brokers, redis, a.dim, ["--threads", str(a.threads),
                                                          "--log-level", "warn"])
        procs.ingest(brokers, redis, ["--log-level", "warn"])
        ch = grpc.insecure_channel(addr)
        aisle_env.wait_for(lambda: aisle_env.healthy(ch),
                           600, "the catalog to load", 0.2)
        print("catalog of %d items loaded by serve in %.1f s" % (a.items, time.time() - t0))
        get_profile = ch.unary_unary("/aisle.v1.Recommender/GetProfile",
                                     request_serializer=lambda m: m.SerializeToString(),
                                     response_deserializer=pb.Profile.FromString)
        last = "u%05d" % (a.users - 1)
        aisle_env.wait_for(lambda: len(get_profile(pb.GetProfileRequest(user_id=last)).items) > 0,
                           600, "the signals to be ingested", 0.2)
        print("signals ingested after %.1f s" % (time.time() - t0))

        # Recommend under h2load: one gRPC frame as the request body.
        req = pb.RecommendRequest(user_id="u00042", limit=10).SerializeToString()
        body = tempfile.NamedTemporaryFile(delete=False)
        body.write(b"\x00" + struct.pack(">I", len(req)) + req)
        body.close()
        reqlog = tempfile.NamedTemporaryFile(delete=False).name
        cmd = ["h2load", "-n", str(a.requests), "-c", str(a.connections), "-m", str(a.streams),
               "-t", "1", "-d", body.name, "--log-file", reqlog,
               "-H", "content-type: application/grpc", "-H", "te: trailers",
               "http://%s/aisle.v1.Recommender/Recommend" % addr]
        subprocess.run(cmd[:2] + ["1000"] + cmd[3:], check=True, capture_output=True)  # warm-up
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
        rps = [l for l in out.splitlines() if l.startswith("finished in")][0]
        status = [l for l in out.splitlines() if l.startswith("status codes")][0]
        lat = []
        with open(reqlog) as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 3:
                    lat.append(int(parts[2]) / 1000.0)
        print("h2load Recommend, %d items, %d connections x %d streams, %d server threads:" %
              (a.items, a.connections, a.streams, a.threads))
        print("  " + rps)
        print("  " + status)
        print("  latency p50 %.2f ms, p99 %.2f ms, max %.2f ms" %
              (pct(lat, 50), pct(lat, 99), max(lat)))

        # Event-to-recommendation delay.
        rec = ch.unary_unary("/aisle.v1.Recommender/Recommend",
                             request_serializer=lambda m: m.SerializeToString(),
                             response_deserializer=pb.RecommendResponse.FromString)
        prod = Producer({"bootstrap.servers": brokers, "linger.ms": 0})
        delays = []
        for t in range(a.delay_trials):
            user = "delay-%d-%s" % (t, uuid.uuid4().hex[:6])
            item = "p%06d" % (t * 997 % a.items)
            s = ev.Signal(event_id=uuid.uuid4().hex, user_id=user, kind=ev.PURCHASE,
                          item_id=item, ts_ms=int(time.time() * 1000))
            start = time.time()
            prod.produce("aisle.signals", key=user, value=s.SerializeToString())
            prod.flush(5)
            while time.time() - start < 5:
                items = rec(pb.RecommendRequest(user_id=user, limit=1), timeout=5).items
                if items and any("Similar to" in r for r in items[0].reasons):
                    delays.append((time.time() - start) * 1000)
                    break
        print("event-to-recommendation delay over %d signals: p50 %.1f ms, p99 %.1f ms, max %.1f ms"
              % (len(delays), pct(delays, 50), pct(delays, 99), max(delays)))
        rss = int(open("/proc/%d/status" % serve.pid).read().split("VmRSS:")[1].split()[0])
        print("serve resident memory: %.0f MiB" % (rss / 1024))
    finally:
        procs.close()


if __name__ == "__main__":
    main()
