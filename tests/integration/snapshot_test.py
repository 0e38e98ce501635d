#!/usr/bin/python3
"""Serving learned snapshots, on real parts: `aisle embed train` writes
snapshots from interactions; `aisle serve --snapshots` ranks with their
vectors and neighbour lists; live catalog facts (titles, stock) apply to
snapshot items and survive a swap; `aisle ctl index reload` swaps in a
newer snapshot while serving; a corrupt newest snapshot is refused and the
current one stays."""

import os
import random
import subprocess
import sys
import time
import unittest
import uuid

import grpc
from confluent_kafka import Producer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import aisle_env  # noqa: E402


def write_interactions(path, seed):
    """Two communities: users 0-59 use items a0-a29, users 60-119 b0-b29."""
    rng = random.Random(seed)
    with open(path, "w") as f:
        for u in range(120):
            side = "a" if u < 60 else "b"
            items = sorted(rng.sample(range(30), 8))
            f.write("u%d %s\n" % (u, " ".join("%s%d" % (side, i) for i in items)))


def train(snaps, data):
    r = subprocess.run([aisle_env.aisle_binary(), "embed", "train", "--input", data, "--out",
                        snaps, "--dim", "8", "--neighbors", "10", "--quiet"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return sorted(d for d in os.listdir(snaps) if d.startswith("snap-"))[-1]


class Snapshots(unittest.TestCase):
    def test_serve_reload_and_refuse(self):
        pb, ev = aisle_env.protos()
        work = os.environ.get("TEST_TMPDIR") or "/tmp"
        snaps = os.path.join(work, "snaps-" + uuid.uuid4().hex[:6])
        os.makedirs(snaps)
        data = os.path.join(work, "interactions.txt")
        write_interactions(data, 1)
        first = train(snaps, data)
        procs = aisle_env.Procs()
        try:
            _, redis = procs.redis()
            _, brokers = procs.kafka()
            serve, addr = procs.serve(brokers, redis, None, ["--snapshots", snaps])
            procs.ingest(brokers, redis)
            self.assertIn("serving snapshot " + first, self.wait_log(procs, serve, first))
            ch = grpc.insecure_channel(addr)
            rec = ch.unary_unary("/aisle.v1.Recommender/Recommend",
                                 request_serializer=lambda m: m.SerializeToString(),
                                 response_deserializer=pb.RecommendResponse.FromString)
            aisle_env.wait_for(lambda: aisle_env.healthy(ch), 20, "serve to be ready")

            # A new shopper who touched three a-items gets the a-community.
            prod = Producer({"bootstrap.servers": brokers})
            for item in ("a1", "a2", "a3"):
                prod.produce("aisle.signals", key="newbie", value=ev.Signal(
                    event_id=uuid.uuid4().hex, user_id="newbie", kind=ev.VIEW, item_id=item,
                    ts_ms=int(time.time() * 1000)).SerializeToString())
            prod.flush(10)
            aisle_env.wait_for(lambda: len(rec(pb.RecommendRequest(user_id="newbie", limit=5),
                                               timeout=5).items[0].reasons) and
                               any("Similar to" in r for r in rec(pb.RecommendRequest(
                                   user_id="newbie", limit=5), timeout=5).items[0].reasons),
                               20, "the signals to count")
            items = rec(pb.RecommendRequest(user_id="newbie", limit=5), timeout=5).items
            ids = [it.item_id for it in items]
            self.assertTrue(all(i.startswith("a") for i in ids), ids)
            self.assertFalse({"a1", "a2", "a3"} & set(ids))

            # Live catalog facts for snapshot items (a title for the first
            # pick, out of stock for the second) are kept across the swap.
            renamed, sold_out = ids[0], ids[1]
            for item_id, in_stock in ((renamed, True), (sold_out, False)):
                prod.produce("aisle.catalog", key=item_id, value=ev.CatalogItem(
                    item_id=item_id, title="Live " + item_id, price_cents=1234,
                    in_stock=in_stock).SerializeToString())
            prod.flush(10)

            def live_facts():
                got = {it.item_id: it for it in rec(pb.RecommendRequest(
                    user_id="newbie", limit=100), timeout=5).items}
                return (got.get(renamed) is not None and got[renamed].title == "Live " + renamed
                        and sold_out not in got)
            aisle_env.wait_for(live_facts, 20, "the live facts to apply")

            # A newer snapshot is swapped in on command.
            write_interactions(data, 2)
            time.sleep(0.01)
            second = train(snaps, data)
            self.assertNotEqual(first, second)
            self.ctl(brokers)
            self.assertIn("now serving snapshot " + second, self.wait_log(procs, serve, second))
            self.assertEqual(len(rec(pb.RecommendRequest(user_id="newbie", limit=5),
                                     timeout=5).items), 5)
            self.assertTrue(live_facts(), "live facts survive the swap")

            # A corrupt newest snapshot is refused; the current one stays.
            time.sleep(0.01)
            third = train(snaps, data)
            qfile = os.path.join(snaps, third, "vectors.bin")
            target = qfile if os.path.exists(qfile) else os.path.join(
                snaps, third, sorted(os.listdir(os.path.join(snaps, third)))[-1])
            with open(target, "r+b") as f:
                f.seek(40)
                b = f.read(1)
                f.seek(40)
                f.write(bytes([b[0] ^ 0xFF]))
            self.ctl(brokers)
            log = self.wait_log(procs, serve, "already serving " + second)
            self.assertIn(third, log, "the refusal names the corrupt snapshot")
            self.assertIsNone(serve.poll())
            self.assertEqual(len(rec(pb.RecommendRequest(user_id="newbie", limit=5),
                                     timeout=5).items), 5)
        finally:
            unclean = procs.close()
        self.assertEqual(unclean, [])

    def test_serving_probe_count(self):
        """With a validation carve, train records the probe count it chose
        through the server's path for the IVF index serve builds; serve
        uses it unless --nprobe is given."""
        work = os.environ.get("TEST_TMPDIR") or "/tmp"
        snaps = os.path.join(work, "snaps-" + uuid.uuid4().hex[:6])
        os.makedirs(snaps)
        data = os.path.join(work, "clusters.txt")
        rng = random.Random(3)
        with open(data, "w") as f:  # 12 clusters of 100 items, 50 users each
            for u in range(600):
                base = (u % 12) * 100
                f.write("u%d %s\n" % (u, " ".join("i%d" % (base + i) for i in
                                                   sorted(rng.sample(range(100), 12)))))
        r = subprocess.run([aisle_env.aisle_binary(), "embed", "train", "--input", data, "--out",
                            snaps, "--dim", "8", "--neighbors", "20", "--holdout", "0.2",
                            "--seed", "1", "--serve-ivf-threshold", "1000"],
                           capture_output=True, text=True, timeout=300)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("serving probe: nprobe 16 of 16 lists", r.stderr)
        snap = sorted(d for d in os.listdir(snaps) if d.startswith("snap-"))[-1]
        with open(os.path.join(snaps, snap, "meta.txt")) as f:
            meta = dict(line.rstrip("\n").split("=", 1) for line in f if "=" in line)
        self.assertEqual(meta["serve_lists"], "16")
        nprobe = int(meta["serve_nprobe"])
        self.assertTrue(1 <= nprobe <= 16)
        self.assertGreaterEqual(float(meta["serve.valid.recall@20"]),
                                float(meta["serve.valid.recall@20.all_lists"]) * 0.999)
        # --tune chooses it on a model of the tuned point trained on its carve.
        tuned = snaps + "-tuned"
        r = subprocess.run([aisle_env.aisle_binary(), "embed", "train", "--input", data, "--out",
                            tuned, "--dim", "8", "--neighbors", "20", "--tune",
                            "--serve-ivf-threshold", "1000", "--quiet"],
                           capture_output=True, text=True, timeout=300)
        self.assertEqual(r.returncode, 0, r.stderr)
        tsnap = sorted(d for d in os.listdir(tuned) if d.startswith("snap-"))[-1]
        with open(os.path.join(tuned, tsnap, "meta.txt")) as f:
            tmeta = f.read()
        self.assertIn("serve_lists=16\n", tmeta)
        self.assertIn("serve_nprobe=", tmeta)
        procs = aisle_env.Procs()
        try:
            _, redis = procs.redis()
            _, brokers = procs.kafka()
            for extra, want in (([], nprobe), (["--nprobe", "3"], 3)):
                serve, _ = procs.serve(brokers, redis, None,
                                       ["--snapshots", snaps, "--ivf-threshold", "1000"] + extra)
                self.assertIn("dimensions, nprobe %d)" % want,
                              self.wait_log(procs, serve, "serving snapshot " + snap))
                procs.stop(serve)
        finally:
            unclean = procs.close()
        self.assertEqual(unclean, [])

    def ctl(self, brokers):
        r = subprocess.run([aisle_env.aisle_binary(), "ctl", "index", "reload",
                            "--kafka-brokers", brokers], capture_output=True, text=True,
                           timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)

    def wait_log(self, procs, p, text, timeout=30):
        aisle_env.wait_for(lambda: text in procs.log(p), timeout, "serve to log " + text, 0.1)
        return procs.log(p)


if __name__ == "__main__":
    unittest.main(verbosity=2)
