#!/usr/bin/python3
"""Recommend through a real server with exposure logging on and off, and
with the hand weights and a learned model, in one run (see run.sh).
Starts redis-server, the Kafka mock cluster, aisle serve and aisle ingest;
loads a generated shop through Kafka; trains a model file with `aisle rank
train` (200 trees of depth 6, as a real one). Then it drives Recommend
(surface home, a user drawn per call) in alternating blocks, switching with
the run-time toggles exposures.log and ranker.model_file through the Admin
service, so the configurations share the machine's state and its load.
Prints calls/s and p99 per configuration and the relative costs."""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

import grpc

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "integration"))
import aisle_env  # noqa: E402


def load(addr, users, calls, inflight, seed):
    """One block of Recommend calls (surface home, a user drawn per call)
    from the C load generator (bench/recommend/load.c, AISLE_LOAD): its
    key=value figures as a dict."""
    out = subprocess.run([os.environ["AISLE_LOAD"], "--addr", addr, "--users", str(users),
                          "--surface", "home", "--calls", str(calls), "--inflight",
                          str(inflight), "--seed", str(seed)],
                         check=True, stdout=subprocess.PIPE, text=True).stdout
    return dict(kv.split("=", 1) for kv in out.split())


def loadavg():
    return " ".join(open("/proc/loadavg").read().split()[:3])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--items", type=int, default=20000)
    ap.add_argument("--users", type=int, default=5000)
    ap.add_argument("--calls", type=int, default=3000, help="calls per block")
    ap.add_argument("--rounds", type=int, default=4, help="blocks of each configuration")
    ap.add_argument("--inflight", type=int, default=16, help="calls the generator keeps in flight")
    a = ap.parse_args()
    aisle_env.protos()  # puts the generated modules on the path
    import importlib
    xp = importlib.import_module("aisle.v1.experiments_pb2")
    procs = aisle_env.Procs()
    d = tempfile.mkdtemp(prefix="aisle-exposure-bench-")
    try:
        _, redis = procs.redis()
        _, brokers = procs.kafka(partitions=8)
        import subprocess
        subprocess.run([aisle_env.aisle_binary(), "synth", "--kafka-brokers", brokers,
                        "--items", str(a.items), "--users", str(a.users),
                        "--signals-per-user", "20"], check=True, stdout=subprocess.DEVNULL)
        model = aisle_env.train_ranker(d, "bench", 1, rounds=200)
        serve, addr = procs.serve(brokers, redis, None, ["--log-level", "warn"])
        procs.ingest(brokers, redis, ["--log-level", "warn"])
        ch = grpc.insecure_channel(addr)
        aisle_env.wait_for(lambda: aisle_env.healthy(ch), 600, "the catalog to load", 0.2)
        aisle_env.wait_profile(ch, "u%05d" % (a.users - 1))
        toggle = ch.unary_unary("/aisle.v1.Admin/SetToggle",
                                request_serializer=lambda m: m.SerializeToString(),
                                response_deserializer=xp.ExperimentSet.FromString)

        def exposures(outcome):
            body = urllib.request.urlopen("http://%s/metrics" % serve.http).read().decode()
            line = 'aisle_exposures_total{outcome="%s"} ' % outcome
            return float(next(x for x in body.splitlines() if x.startswith(line)).split()[-1])

        configs = [("logging on, hand weights", "on", None),
                   ("logging off, hand weights", "off", None),
                   ("logging on, learned model", "on", model)]
        stats = {name: [0, 0.0, [], []] for name, _, _ in configs}
        load(addr, a.users, 1000, a.inflight, 3)  # warm up
        print("load average before: %s" % loadavg())
        for r in range(a.rounds):
            for name, log, m in configs:
                toggle(xp.SetToggleRequest(param="exposures.log", value=log), timeout=5)
                toggle(xp.SetToggleRequest(param="ranker.model_file", value=m or "none"),
                       timeout=5)
                time.sleep(0.6)  # every replica applies a change within about 200 ms
                f = load(addr, a.users, a.calls, a.inflight, 11 + r)
                rate = float(f["calls_per_s"])
                st = stats[name]
                st[0] += a.calls
                st[1] += a.calls / rate
                st[2].append((float(f["p50_ms"]), float(f["p99_ms"])))
                st[3].append(rate)
                if f["errors"] != "0":
                    print("  %s: %s errors" % (name, f["errors"]))
        print("load average after: %s" % loadavg())
        print("%d blocks of %d calls per configuration, alternating; %d items, %d users, "
              "surface home; %d calls in flight (p50 and p99: the median block's):" %
              (a.rounds, a.calls, a.items, a.users, a.inflight))
        rates = {}
        for name, _, _ in configs:
            n, secs, lat, blocks = stats[name]
            rates[name] = n / secs
            print("  %-28s %7.0f calls/s  p50 %6.2f ms  p99 %6.2f ms  (blocks %s)" %
                  (name, rates[name], statistics.median(x[0] for x in lat),
                   statistics.median(x[1] for x in lat), " ".join("%.0f" % b for b in blocks)))
        on, off = rates[configs[0][0]], rates[configs[1][0]]
        print("exposure logging costs %.1f %% of throughput (goal < 5 %%)" % (100 * (1 - on / off)))
        print("the learned model costs %.1f %% of throughput against the hand weights" %
              (100 * (1 - rates[configs[2][0]] / on)))
        print("exposures queued %d, dropped %d, delivered %d" %
              (exposures("queued"), exposures("dropped"), exposures("delivered")))
    finally:
        procs.close()


if __name__ == "__main__":
    main()
