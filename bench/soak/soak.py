#!/usr/bin/python3
"""Soak of the serving and ingest paths (see run.sh).

Loads: Recommend from h2load at a fixed rate (8 connections; one body),
Shop from a Python client a few times a second (fast and contemplating),
signals produced to Kafka at a fixed rate over many users, and catalog
price and stock updates. Half way through, Redis is killed and restarted on
the same port, then a broker goes down for a while and comes back. Every
sample prints serve's and ingest's resident memory, threads and open file
descriptors, and the errors seen since the last sample; the summary
compares the last samples with those before the faults."""

import argparse
import os
import struct
import subprocess
import sys
import tempfile
import threading
import time
import uuid

import grpc
from confluent_kafka import Producer

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "..", "tests", "integration"))
import aisle_env  # noqa: E402


def proc_stats(pid):
    with open("/proc/%d/status" % pid) as f:
        st = f.read()
    rss = int(st.split("VmRSS:")[1].split()[0]) / 1024
    threads = int(st.split("Threads:")[1].split()[0])
    fds = len(os.listdir("/proc/%d/fd" % pid))
    return rss, threads, fds


class Counter:
    def __init__(self):
        self.lock = threading.Lock()
        self.n = {}

    def add(self, key, k=1):
        with self.lock:
            self.n[key] = self.n.get(key, 0) + k

    def take(self):
        with self.lock:
            n, self.n = self.n, {}
        return n


def h2load_loop(addr, body, rps, stop, counts):
    """Recommend at rps calls/s in 10 s rounds until stop."""
    per_client = max(1, rps // 8)
    while not stop.is_set():
        out = subprocess.run(
            ["h2load", "-c", "8", "-m", "4", "-t", "1", "--rps", str(per_client), "-D", "10",
             "-d", body, "-H", "content-type: application/grpc", "-H", "te: trailers",
             "http://%s/aisle.v1.Recommender/Recommend" % addr],
            capture_output=True, text=True).stdout
        for line in out.splitlines():
            if line.startswith("requests:"):
                # "requests: N total, N started, N done, N succeeded, N failed, N errored, ..."
                parts = line.replace(",", "").split()
                counts.add("recommend", int(parts[7]))
                counts.add("recommend_failed", int(parts[9]) + int(parts[11]))


def shop_loop(ch, pb, users, stop, counts):
    shop = ch.unary_stream("/aisle.v1.Recommender/Shop",
                           request_serializer=lambda m: m.SerializeToString(),
                           response_deserializer=pb.ShopChunk.FromString)
    i = 0
    while not stop.is_set():
        mode = pb.SHOP_MODE_CONTEMPLATING if i % 2 else pb.SHOP_MODE_FAST
        try:
            list(shop(pb.ShopRequest(user_id="u%05d" % (i % users), query="a gift under $40",
                                     limit=3, mode=mode), timeout=5))
            counts.add("shop")
        except grpc.RpcError as e:
            counts.add("shop_" + e.code().name.lower())
        i += 1
        time.sleep(0.2)


def probe_loop(ch, pb, users, stop, counts):
    """A gRPC client's view of Recommend (h2load cannot read grpc-status)."""
    rec = ch.unary_unary("/aisle.v1.Recommender/Recommend",
                         request_serializer=lambda m: m.SerializeToString(),
                         response_deserializer=pb.RecommendResponse.FromString)
    i = 0
    while not stop.is_set():
        try:
            rec(pb.RecommendRequest(user_id="u%05d" % (i * 7919 % users), limit=10), timeout=2)
            counts.add("probe")
        except grpc.RpcError as e:
            counts.add("probe_" + e.code().name.lower())
        i += 1
        time.sleep(0.05)


def signal_loop(brokers, ev, users, items, rate, stop, counts):
    prod = Producer({"bootstrap.servers": brokers, "linger.ms": 5, "log_level": 2,
                     "queue.buffering.max.messages": 1000000})
    kinds = [ev.VIEW, ev.VIEW, ev.VIEW, ev.CLICK, ev.ADD_TO_CART, ev.PURCHASE, ev.LIKE]
    n = 0
    t0 = time.time()
    while not stop.is_set():
        batch = 200
        for _ in range(batch):
            user = "u%05d" % (n * 2654435761 % users)
            s = ev.Signal(event_id=uuid.uuid4().hex, user_id=user, kind=kinds[n % len(kinds)],
                          item_id="p%06d" % (n * 40503 % items), creator_id="c%04d" % (n % 200),
                          ts_ms=int(time.time() * 1000))
            try:
                prod.produce("aisle.signals", key=user, value=s.SerializeToString())
            except BufferError:
                counts.add("signals_dropped_locally")
                prod.poll(0.05)
            n += 1
        prod.poll(0)
        counts.add("signals", batch)
        ahead = n / rate - (time.time() - t0)
        if ahead > 0:
            time.sleep(ahead)
    prod.flush(10)


def catalog_loop(brokers, ev, items, dim, stop, counts):
    prod = Producer({"bootstrap.servers": brokers, "linger.ms": 5, "log_level": 2})
    n = 0
    while not stop.is_set():
        item = "p%06d" % (n * 7 % items)
        # A facts-only update (no embedding): price and stock change.
        it = ev.CatalogItem(item_id=item, title="Item %d" % n, price_cents=1000 + n % 5000,
                            in_stock=n % 10 != 0)
        prod.produce("aisle.catalog", key=item, value=it.SerializeToString())
        counts.add("catalog_updates")
        n += 1
        prod.poll(0)
        time.sleep(0.1)
    prod.flush(10)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, default=30)
    ap.add_argument("--rps", type=int, default=5000, help="Recommend calls/s offered")
    ap.add_argument("--signals-per-s", type=int, default=20000)
    ap.add_argument("--items", type=int, default=20000)
    ap.add_argument("--users", type=int, default=5000)
    ap.add_argument("--dim", type=int, default=32)
    ap.add_argument("--sample-s", type=float, default=0)
    a = ap.parse_args()
    total = a.minutes * 60
    sample = a.sample_s or max(5.0, total / 30)
    pb, ev = aisle_env.protos()
    procs = aisle_env.Procs()
    stop = threading.Event()
    counts = Counter()
    threads = []
    try:
        redis_proc, redis = procs.redis()
        redis_port = redis.split(":")[1]
        kafka, brokers = procs.start("kafka", [aisle_env.aisle_binary(), "kafka-mock",
                                               "--brokers", "3", "--partitions", "32"],
                                     "bootstrap=", stdin=subprocess.PIPE)
        subprocess.run([aisle_env.aisle_binary(), "synth", "--kafka-brokers", brokers,
                        "--items", str(a.items), "--users", str(a.users),
                        "--signals-per-user", "5", "--dim", str(a.dim)],
                       check=True, stdout=subprocess.DEVNULL)
        serve, addr = procs.serve(brokers, redis, a.dim, ["--log-level", "warn"])
        ingest = procs.ingest(brokers, redis, ["--log-level", "warn"])
        ch = grpc.insecure_channel(addr)
        aisle_env.wait_for(lambda: aisle_env.healthy(ch), 600, "the catalog to load", 0.2)

        req = pb.RecommendRequest(user_id="u00042", limit=10).SerializeToString()
        body = tempfile.NamedTemporaryFile(delete=False)
        body.write(b"\x00" + struct.pack(">I", len(req)) + req)
        body.close()
        loops = [(h2load_loop, (addr, body.name, a.rps, stop, counts)),
                 (shop_loop, (ch, pb, a.users, stop, counts)),
                 (probe_loop, (ch, pb, a.users, stop, counts)),
                 (signal_loop, (brokers, ev, a.users, a.items, a.signals_per_s, stop, counts)),
                 (catalog_loop, (brokers, ev, a.items, a.dim, stop, counts))]
        for fn, args in loops:
            t = threading.Thread(target=fn, args=args, daemon=True)
            t.start()
            threads.append(t)

        def fault(cmd):
            kafka.stdin.write((cmd + "\n").encode())
            kafka.stdin.flush()
            kafka.stdout.readline()

        print("%7s %9s %8s %6s %9s %8s %6s  %s" % ("t (s)", "serve MiB", "threads", "fds",
                                                  "ingest MiB", "threads", "fds",
                                                  "calls and errors since the last sample"))
        t0 = time.time()
        rows = []
        faults = [(total * 0.45, "redis restart"), (total * 0.55, "broker 2 down"),
                  (total * 0.60, "broker 2 up")]
        next_sample = sample
        while time.time() - t0 < total:
            now = time.time() - t0
            while faults and now >= faults[0][0]:
                what = faults.pop(0)[1]
                print("-- %s at %.0f s" % (what, now))
                if what == "redis restart":
                    procs.stop(redis_proc)
                    time.sleep(2)
                    redis_proc, _ = procs.start(
                        "redis", ["redis-server", "--port", redis_port, "--bind", "127.0.0.1",
                                  "--save", "", "--appendonly", "no"])
                elif what == "broker 2 down":
                    fault("down 2")
                else:
                    fault("up 2")
            if now >= next_sample:
                s, i = proc_stats(serve.pid), proc_stats(ingest.pid)
                c = counts.take()
                rows.append((now, s, i, c))
                print("%7.0f %9.1f %8d %6d %9.1f %8d %6d  %s" % (
                    now, s[0], s[1], s[2], i[0], i[1], i[2],
                    " ".join("%s=%d" % kv for kv in sorted(c.items()))))
                sys.stdout.flush()
                next_sample += sample
            time.sleep(0.2)
        stop.set()
        for t in threads:
            t.join(30)
        before = [r for r in rows if r[0] < total * 0.45]
        after = rows[-max(1, len(rows) // 5):]
        if before and after:
            b, e = before[-1], after[-1]
            print("serve: %.1f -> %.1f MiB, %d -> %d threads, %d -> %d fds (before the faults -> end)"
                  % (b[1][0], e[1][0], b[1][1], e[1][1], b[1][2], e[1][2]))
            print("ingest: %.1f -> %.1f MiB, %d -> %d threads, %d -> %d fds"
                  % (b[2][0], e[2][0], b[2][1], e[2][1], b[2][2], e[2][2]))
            errs = {k: v for r in after for k, v in r[3].items()
                    if k not in ("recommend", "shop", "probe", "signals", "catalog_updates")}
            print("errors in the last fifth of the run: %s" % (errs or "none"))
    finally:
        stop.set()
        unclean = procs.close()
        if unclean:
            print("unclean exits:\n" + "\n".join(unclean))


if __name__ == "__main__":
    main()
