#!/usr/bin/python3
"""Online half of the quality bench: the served path must rank like the
offline evaluation. Replays every train interaction through Kafka (aisle
ingest) into Redis profiles, serves the snapshot with aisle serve, calls
Recommend over gRPC for each test user (their train items are left out by
the server, as the protocol asks), and scores the answers with the LightGCN
protocol: Recall@K = hits / |test items|, NDCG@K with binary relevance.
Then measures calls/s and p50/p99 with the C load generator over every
test user, and the highest rate whose p99 stays under SLO_MS (throughput
below).

    online.py AISLE_BIN SNAPSHOT_ROOT TRAIN_SPLIT TEST_SPLIT [OFFLINE_TABLE]

SERVE_OPTS is the serving setting (default "--ivf-threshold 0", exact
search), or several separated by ';', each served in turn against the same
replayed profiles; a setting that starts with "@PATH" is served by the aisle
binary at PATH (an old build beside the new, in one run). ONLINE_SCORES=0
measures speed only. HOLD=1 keeps the last setting's server, Redis and
Kafka up after it (for perf or the load generator by hand) until SIGTERM.
"""

import math
import os
import signal
import sys
import tempfile
import time

import grpc
from confluent_kafka import Producer

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "..", "tests", "integration"))
import aisle_env  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import loadgen  # noqa: E402

KS = (10, 20, 50)
PARTITIONS = 64  # the mock cluster keeps ~5 MiB per partition


def read_lightgcn(path):
    users = {}
    with open(path) as f:
        for line in f:
            parts = line.split()
            if len(parts) > 1:
                users[parts[0]] = parts[1:]
    return users


def score(ranked, truth):
    out = {}
    for k in KS:
        hits = [1 if i in truth else 0 for i in ranked[:k]]
        dcg = sum(h / math.log2(r + 2) for r, h in enumerate(hits))
        idcg = sum(1 / math.log2(r + 2) for r in range(min(k, len(truth))))
        out[k] = (sum(hits) / len(truth), dcg / idcg)
    return out


def throughput(addr, users):
    """Serving speed with the C load generator (AISLE_LOAD, bench/recommend/load.c), the
    calls spread over every test user, beside the empty method on the same server:
    closed loop, open loop at 5,000/s, and the highest rate whose p99 stays under
    SLO_MS (10; 0 skips that search, about a minute)."""
    if not os.environ.get("AISLE_LOAD"):
        print("throughput: AISLE_LOAD is not set (bench/lib.sh sets it); not measured")
        return
    slo_ms = float(os.environ.get("SLO_MS", "10"))
    with tempfile.NamedTemporaryFile("w", suffix=".users") as f:
        f.write("\n".join(users) + "\n")
        f.flush()
        print("throughput (load average %s), limit %d, each call for a test user:" %
              (" ".join(open("/proc/loadavg").read().split()[:3]), max(KS)))
        base = ["--addr", addr, "--users-file", f.name, "--limit", str(max(KS)),
                "--warmup", "200"]
        got = {}
        for name, args in (("empty method", ["--method", "health", "--calls", "20000"]),
                           ("Recommend, closed loop", ["--seconds", "20"]),
                           ("Recommend, open loop at 5000/s", ["--rate", "5000", "--seconds",
                                                               "10", "--inflight", "2000"])):
            got[name] = loadgen.run(base + args)
            print("  %-32s %s" % (name, loadgen.figures(got[name])))
        if slo_ms > 0:
            rate, r = loadgen.slo_rate(base, got["Recommend, closed loop"]["calls_per_s"],
                                       slo_ms, 5, 3)
            print("  %-32s %s" % ("Recommend, p99 under %g ms" % slo_ms,
                                  loadgen.slo_line(rate, r)))


def hold(serve, addr, test):
    """Leaves the environment up; the test users' ids are written beside it
    for the load generator's --users-file."""
    users = os.path.join(tempfile.gettempdir(), "aisle-quality-%d.users" % os.getpid())
    with open(users, "w") as f:
        f.write("\n".join(test) + "\n")
    print("holding: serve (pid %d) at %s, test users in %s; SIGTERM to this process ends"
          % (serve.pid, addr, users), flush=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # procs.close() still runs
    try:
        while True:
            time.sleep(3600)
    finally:
        os.unlink(users)


def settings():
    """(aisle binary, serve options) for each setting of SERVE_OPTS."""
    out = []
    for s in os.environ.get("SERVE_OPTS", "--ivf-threshold 0").split(";"):
        words = s.split()
        binary = os.environ["AISLE_BIN"]
        if words and words[0].startswith("@"):
            binary, words = words[0][1:], words[1:]
        out.append((binary, words))
    return out


def replay(brokers, train, ev):
    """Every train interaction as a view signal, keyed by user."""
    prod = Producer({"bootstrap.servers": brokers, "linger.ms": 20,
                     "queue.buffering.max.messages": 1000000})
    ts = int(time.time() * 1000) - 60000
    n = 0
    for user, items in train.items():
        for item in items:
            s = ev.Signal(event_id="%s/%s" % (user, item), user_id=user, kind=ev.VIEW,
                          item_id=item, ts_ms=ts)
            while True:
                try:
                    prod.produce("aisle.signals", key=user, value=s.SerializeToString())
                    break
                except BufferError:
                    prod.poll(0.05)
            n += 1
    prod.flush(120)
    return n


def online_scores(addr, pb, test):
    """Sums of Recall/NDCG@K over the test users, from Recommend calls kept
    64 in flight (gRPC futures), so the server, not the client, sets the pace."""
    ch = grpc.insecure_channel(addr)
    rec = ch.unary_unary("/aisle.v1.Recommender/Recommend",
                         request_serializer=lambda m: m.SerializeToString(),
                         response_deserializer=pb.RecommendResponse.FromString)
    sums = {k: [0.0, 0.0] for k in KS}
    window = []

    def drain(fut, user):
        res = score([it.item_id for it in fut.result().items], set(test[user]))
        for k in KS:
            sums[k][0] += res[k][0]
            sums[k][1] += res[k][1]

    t1 = time.time()
    for user in test:
        window.append((rec.future(pb.RecommendRequest(user_id=user, limit=max(KS)),
                                  timeout=120), user))
        if len(window) >= 64:
            drain(*window.pop(0))
    for fut, user in window:
        drain(fut, user)
    dt = time.time() - t1
    print("online: %d Recommend calls in %.1f s (%.0f/s) from Python, for the scores" %
          (len(test), dt, len(test) / dt))
    ch.close()
    return sums


def report(sums, n, offline):
    print("     K   Recall@K     NDCG@K    (offline Recall / NDCG, online vs offline)")
    for k in KS:
        r, g = sums[k][0] / n, sums[k][1] / n
        line = "%6d %10.4f %10.4f" % (k, r, g)
        if k in offline:
            o_r, o_g = offline[k]
            line += "    (%.4f / %.4f, %+.2f%% / %+.2f%%)" % (
                o_r, o_g, 100 * (r - o_r) / o_r, 100 * (g - o_g) / o_g)
        print(line)


def read_offline(path):
    offline = {}
    with open(path) as f:
        for line in f:
            p = line.split()
            if len(p) == 3 and p[0].isdigit():
                offline[int(p[0])] = (float(p[1]), float(p[2]))
    return offline


def main():
    if len(sys.argv) not in (5, 6):
        print(__doc__, file=sys.stderr)
        return 2
    os.environ["AISLE_BIN"] = sys.argv[1]
    snaps, train_path, test_path = sys.argv[2:5]
    offline = read_offline(sys.argv[5]) if len(sys.argv) == 6 else {}
    pb, ev = aisle_env.protos()
    train, test = read_lightgcn(train_path), read_lightgcn(test_path)
    procs = aisle_env.Procs()
    try:
        _, redis = procs.redis()
        _, brokers = procs.kafka(partitions=PARTITIONS)
        t0 = time.time()
        procs.ingest(brokers, redis, ["--max-items", "5000", "--batch", "2000",
                                      "--log-level", "warn"])
        n = replay(brokers, train, ev)
        print("replayed %d train interactions of %d users in %.1f s" %
              (n, len(train), time.time() - t0))
        aisle_env.wait_for(lambda: aisle_env.caught_up(brokers, "aisle-ingest", "aisle.signals",
                                                             PARTITIONS), 900,
                           "ingest to commit every signal", 1.0)
        print("ingested into Redis profiles after %.1f s" % (time.time() - t0))
        runs = settings()
        for i, (binary, serving) in enumerate(runs):
            # Exact search by default, so the served ranking can equal the
            # offline one; other settings name an IVF index, nprobe, a trim.
            print("serving setting: %s%s" % (" ".join(serving),
                                             "" if binary == sys.argv[1] else " (%s)" % binary))
            os.environ["AISLE_BIN"] = binary
            p, addr = procs.serve(brokers, redis, None, ["--snapshots", snaps, "--threads", "2",
                                                         "--log-level", "warn"] + serving,
                                  timeout=300)
            aisle_env.wait_for(lambda: aisle_env.healthy(grpc.insecure_channel(addr)), 300,
                               "serve to load the snapshot", 0.5)
            if os.environ.get("ONLINE_SCORES") != "0":
                report(online_scores(addr, pb, test), len(test), offline)
            throughput(addr, list(test.keys()))
            if os.environ.get("HOLD") == "1" and i == len(runs) - 1:
                hold(p, addr, test)
            procs.stop(p)
    finally:
        procs.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
