#!/usr/bin/python3
"""Benchmark of the serving path (see run.sh). Starts redis-server, the Kafka
mock cluster, aisle serve and aisle ingest; loads a generated catalog and
shoppers (one profile each) through Kafka; then, in one run against one
server, drives an empty method (Health/Check: the transport's bound) and
Recommend in three configurations with a load generator that draws a
different user for every call (load.c, closed loop, then open loop at a
target rate, and a search for the highest rate whose p99 stays under
--slo-ms: the goal's own terms); then measures how long a new signal takes
to change a user's recommendations."""

import argparse
import os
import signal
import subprocess
import sys
import time
import uuid

import grpc
from confluent_kafka import Producer

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "..", "tests", "integration"))
import aisle_env  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import loadgen  # noqa: E402


PARTITIONS = 32


def configs(a):
    """(row name, load generator arguments) of each configuration."""
    home = ["--surface", "home", "--filter"]
    return [
        ("empty method (Health/Check)", ["--method", "health"]),
        ("Recommend, surface \"\" (exact: profile + neighbours)", []),
        ("Recommend, home: 4 sources, filter, MMR, caps", home),
        ("Recommend, home + query_vector + context item (6 sources)",
         home + ["--query-dim", str(a.dim), "--context"]),
    ]


def load_argv(a, addr, args):
    """The load generator's arguments for args: every call for a user drawn
    from a.users, over a.channels channels."""
    return ["--addr", addr, "--users", str(a.users), "--items", str(a.items),
            "--channels", str(a.channels)] + args


def load_average():
    return " ".join(open("/proc/loadavg").read().split()[:3])


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p / 100))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--items", type=int, default=100000)
    ap.add_argument("--users", type=int, default=100000)
    ap.add_argument("--signals-per-user", type=int, default=10)
    ap.add_argument("--dim", type=int, default=32)
    ap.add_argument("--requests", type=int, default=20000,
                    help="calls per closed-loop configuration")
    ap.add_argument("--inflight", type=int, default=64, help="closed loop: calls in flight")
    ap.add_argument("--channels", type=int, default=4, help="load generator channels")
    ap.add_argument("--rate", type=int, default=5000,
                    help="open loop: calls/s for the empty method and the first rows (0: none)")
    ap.add_argument("--seconds", type=float, default=10, help="open loop: seconds per row")
    ap.add_argument("--slo-ms", type=float, default=10,
                    help="the p99 bound whose highest sustained rate is searched (0: no search)")
    ap.add_argument("--slo-steps", type=int, default=6, help="bisection steps of that search")
    ap.add_argument("--slo-seconds", type=float, default=3, help="seconds a run of that search")
    ap.add_argument("--threads", type=int, default=4, help="server worker threads")
    ap.add_argument("--delay-trials", type=int, default=50)
    ap.add_argument("--rows", type=int, default=4, help="run only the first N configurations")
    ap.add_argument("--hold", action="store_true",
                    help="after loading, keep the servers up for a profiler instead of calling")
    a = ap.parse_args()
    pb, ev = aisle_env.protos()
    procs = aisle_env.Procs()
    try:
        _, redis = procs.redis()
        _, brokers = procs.kafka(partitions=PARTITIONS)
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
        aisle_env.wait_profile(ch, "u%05d" % (a.users - 1))
        # Every signal in Redis, so ingest is idle while the calls are timed.
        aisle_env.wait_for(lambda: aisle_env.caught_up(brokers, "aisle-ingest", "aisle.signals",
                                                       PARTITIONS), 600, "ingest to commit", 0.5)
        print("signals ingested after %.1f s" % (time.time() - t0))

        if a.hold:
            print("holding: serve (pid %d) at %s, Redis at %s, Kafka at %s; SIGTERM or Ctrl-C "
                  "to this process ends" % (serve.pid, addr, redis, brokers), flush=True)
            signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # kill PID stops them all
            while True:
                time.sleep(3600)
        print("load average before the calls: %s" % load_average())
        print("%d calls per closed-loop row (%d in flight over %d channels), each for a user "
              "drawn from %d; %d server threads; the load generator on the same cores:" %
              (a.requests, a.inflight, a.channels, a.users, a.threads))
        closed = {}
        for name, args in configs(a)[:a.rows]:
            closed[name] = loadgen.run(load_argv(a, addr, args + [
                "--calls", str(a.requests), "--inflight", str(a.inflight)]))
            print("  %-62s %s" % (name, loadgen.figures(closed[name])))
        if a.rate > 0:
            print("open loop at %d calls/s for %g s (latency from each call's due time):" %
                  (a.rate, a.seconds))
        for name, args in configs(a)[:min(a.rows, 3)] if a.rate > 0 else []:
            print("  %-62s %s" % (name, loadgen.figures(loadgen.run(load_argv(a, addr, args + [
                "--rate", str(a.rate), "--seconds", str(a.seconds), "--inflight", "2000"])))))
        if a.slo_ms > 0:
            print("highest offered rate with p99 under %g ms in 2 of 3 runs of %g s (bisection "
                  "below each closed-loop rate, %d steps):" % (a.slo_ms, a.slo_seconds,
                                                                 a.slo_steps))
        for name, args in configs(a)[:min(a.rows, 3)] if a.slo_ms > 0 else []:
            rate, r = loadgen.slo_rate(load_argv(a, addr, args), closed[name]["calls_per_s"],
                                       a.slo_ms, a.slo_steps, a.slo_seconds)
            print("  %-62s %s" % (name, loadgen.slo_line(rate, r)))
        print("load average after the calls: %s" % load_average())

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
