#!/usr/bin/python3
"""The Python client package (deploy/python): its generated modules match
proto/, and its helpers (Tracker, recommend with filters and pages,
similar, profile, shop streaming, delete_profile, errors, TLS and tokens)
and example.py work against a running serve and ingest."""

import filecmp
import hashlib
import os
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import aisle_env  # noqa: E402

PKG = os.path.join(aisle_env.ROOT, "deploy", "python")
sys.path.insert(0, PKG)
import aisle_client  # noqa: E402
from aisle_client import AisleError, Client, ShopMode, Tracker  # noqa: E402

DIM = 8


class PyClient(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.procs = aisle_env.Procs()
        try:
            _, redis = cls.procs.redis()
            _, cls.brokers = cls.procs.kafka()
            from confluent_kafka import Producer
            p = Producer({"bootstrap.servers": cls.brokers})
            for i in range(20):
                v = [0.0] * DIM
                v[i % DIM] = 1.0
                it = aisle_client.events.CatalogItem(
                    item_id="t%02d" % i, title="Trail runner %d" % i, creator_id="c1",
                    category="running", price_cents=5000 + 100 * i, in_stock=True, brand="Stride",
                    embedding=v)
                p.produce("aisle.catalog", key=it.item_id, value=it.SerializeToString())
            p.flush(10)
            _, cls.addr = cls.procs.serve(cls.brokers, redis, DIM)
            cls.tls = tempfile.mkdtemp(prefix="aisle-pytls-")
            subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days",
                            "2", "-subj", "/CN=localhost", "-addext",
                            "subjectAltName=DNS:localhost", "-keyout", "key.pem", "-out",
                            "cert.pem"], cwd=cls.tls, check=True, capture_output=True)
            with open(os.path.join(cls.tls, "tokens"), "w") as f:
                f.write("app %s\n" % hashlib.sha256(b"py-app-token").hexdigest())
            _, cls.tls_addr = cls.procs.serve(cls.brokers, redis, DIM, [
                "--tls-cert", os.path.join(cls.tls, "cert.pem"),
                "--tls-key", os.path.join(cls.tls, "key.pem"),
                "--tokens-file", os.path.join(cls.tls, "tokens")])
            cls.procs.ingest(cls.brokers, redis)
        except Exception:
            cls.procs.close()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.procs.close_checked()

    def test_generated_modules_match_the_proto(self):
        out = tempfile.mkdtemp(prefix="aisle-gen-")
        subprocess.run(["sh", os.path.join(PKG, "generate.sh"), out], check=True)
        for name in ("aisle_pb2.py", "aisle_pb2_grpc.py", "events_pb2.py"):
            self.assertTrue(filecmp.cmp(os.path.join(out, "aisle", "v1", name),
                                        os.path.join(PKG, "aisle_client", "_gen", "aisle", "v1",
                                                     name), shallow=False),
                            "%s is stale: run deploy/python/generate.sh" % name)

    def test_track_then_recommend_profile_shop_delete(self):
        with Tracker(self.brokers) as track:
            eid = track.click("py-user", "t03")
            track.purchase("py-user", "t04")
        self.assertEqual(len(eid), 32)
        with Client(self.addr) as aisle:
            aisle_env.wait_for(lambda: {w.id for w in aisle.profile("py-user").items} >=
                               {"t03", "t04"}, 20, "the tracked signals", 0.1)
            items = aisle.recommend("py-user", limit=4)
            self.assertEqual(len(items), 4)
            self.assertNotIn("t04", [i.item_id for i in items])  # bought
            self.assertTrue(items[0].reasons and items[0].price.startswith("$"))
            self.assertRegex(aisle.last_request_id, r"^[0-9a-f]{8}-[0-9a-f]{6}$")
            chunks = list(aisle.shop("py-user", "trail runner under $60", limit=2,
                                     mode=ShopMode.CONTEMPLATING))
            self.assertTrue(chunks[0].items and chunks[-1].done)
            self.assertIn("Trail runner", "".join(c.text for c in chunks))
            self.assertTrue(aisle.delete_profile("py-user"))
            self.assertFalse(aisle.profile("py-user").exists)
            with self.assertRaises(AisleError) as e:
                aisle.recommend("")
            self.assertEqual(e.exception.code.name, "INVALID_ARGUMENT")
        with Client("127.0.0.1:1", timeout=2) as down:
            with self.assertRaises(AisleError) as e:
                down.recommend("x")
            self.assertEqual(e.exception.code.name, "UNAVAILABLE")

    def test_filters_pages_and_similar(self):
        with Client(self.addr) as aisle:
            seen = []
            page = aisle.recommend_page("nobody", limit=4, surface="home",
                                        filter={"max_price_cents": 6500})
            for _ in range(3):
                self.assertTrue(page.items)
                self.assertTrue(all(i.price_cents <= 6500 for i in page.items))
                seen += [i.item_id for i in page.items]
                if not page.next_page_token:
                    break
                page = aisle.recommend_page("nobody", limit=4, surface="home",
                                            filter={"max_price_cents": 6500},
                                            page_token=page.next_page_token)
            self.assertEqual(len(seen), len(set(seen)))  # no page repeats an item
            self.assertGreater(len(seen), 4)
            self.assertTrue(all(i.sources for i in page.items))
            like = aisle.similar("t03", limit=3)
            self.assertEqual(len(like.items), 3)
            self.assertNotIn("t03", [i.item_id for i in like.items])
            with self.assertRaises(AisleError) as e:
                aisle.similar("no-such-item")
            self.assertEqual(e.exception.code.name, "NOT_FOUND")

    def test_tls_and_token(self):
        ca = os.path.join(self.tls, "cert.pem")
        with Client(self.tls_addr, token="py-app-token", tls_ca=ca,
                    server_name="localhost") as aisle:
            self.assertTrue(aisle.recommend("anyone", limit=2))
        with Client(self.tls_addr, tls_ca=ca, server_name="localhost") as anon:
            with self.assertRaises(AisleError) as e:
                anon.recommend("anyone")
            self.assertEqual(e.exception.code.name, "UNAUTHENTICATED")

    def test_example_runs(self):
        r = subprocess.run([sys.executable, os.path.join(PKG, "example.py"), "--server",
                            self.addr, "--kafka-brokers", self.brokers, "--user", "ex-user",
                            "--item", "t07", "--query", "running under $55"],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("Recommended for ex-user", r.stdout)
        self.assertIn("Trail runner", r.stdout)


if __name__ == "__main__":
    unittest.main(verbosity=2)
