#!/usr/bin/python3
"""Benchmark of the serving path (see run.sh). Starts redis-server, the Kafka
mock cluster, aisle serve and aisle ingest; loads a generated catalog and
shoppers (one profile each) through Kafka; then, in one run against one
server, drives an empty method (Health/Check: the transport's bound) and
Recommend in three configurations with a load generator that draws a
different user for every call (load.py); then measures how long a new
signal takes to change a user's recommendations."""

import argparse
import os
import subprocess
import sys
import time
import uuid

import grpc
from confluent_kafka import Producer

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "..", "tests", "integration"))
import aisle_env  # noqa: E402
import load  # noqa: E402


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p / 100))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--items", type=int, default=100000)
    ap.add_argument("--users", type=int, default=100000)
    ap.add_argument("--signals-per-user", type=int, default=10)
    ap.add_argument("--dim", type=int, default=32)
    ap.add_argument("--requests", type=int, default=20000, help="calls per configuration")
    ap.add_argument("--procs", type=int, default=4, help="load generator processes")
    ap.add_argument("--client-threads", type=int, default=4, help="threads per process")
    ap.add_argument("--threads", type=int, default=4, help="server worker threads")
    ap.add_argument("--delay-trials", type=int, default=50)
    ap.add_argument("--rows", type=int, default=4, help="run only the first N configurations")
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

        users = a.users

        def recommend(**kw):
            return lambda rng: pb.RecommendRequest(
                user_id="u%05d" % rng.randrange(users), limit=10, **kw).SerializeToString()

        def vector(rng):
            return [rng.gauss(0, 1) for _ in range(a.dim)]

        filt = pb.Filter(max_price_cents=20000, exclude_categories=["coffee"])
        configs = [
            ("empty method (Health/Check)", "/grpc.health.v1.Health/Check", lambda rng: b""),
            ("Recommend, surface \"\" (exact: profile + neighbours)",
             "/aisle.v1.Recommender/Recommend", recommend()),
            ("Recommend, home: 4 sources, filter, MMR, caps",
             "/aisle.v1.Recommender/Recommend", recommend(surface="home", filter=filt)),
            ("Recommend, home + query_vector + context item (6 sources)",
             "/aisle.v1.Recommender/Recommend",
             lambda rng: pb.RecommendRequest(
                 user_id="u%05d" % rng.randrange(users), limit=10, surface="home", filter=filt,
                 query_vector=vector(rng),
                 context_item_id="p%06d" % rng.randrange(a.items)).SerializeToString()),
        ]
        print("%d calls per row, each for a user drawn from %d; %d client processes x %d "
              "threads; %d server threads; all on this machine's cores:" %
              (a.requests, users, a.procs, a.client_threads, a.threads))
        for name, method, make in configs[:a.rows]:
            load.run(addr, make, method, min(2000, a.requests), a.procs, a.client_threads, 7)
            rate, lat, errors = load.run(addr, make, method, a.requests, a.procs,
                                         a.client_threads)
            print("  %-58s %7.0f calls/s  p50 %6.2f ms  p99 %6.2f ms  errors %d" %
                  (name, rate, load.pct(lat, 50), load.pct(lat, 99), errors))

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
