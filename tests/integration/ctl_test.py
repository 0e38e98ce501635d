#!/usr/bin/python3
"""`aisle ctl` against a running serve: every subcommand as a table and as
--json, and the exit codes scripts test (0 done, 1 failed, 2 usage,
3 unavailable, 4 not found)."""

import json
import os
import subprocess
import sys
import time
import unittest
import uuid

from confluent_kafka import Producer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import aisle_env  # noqa: E402

DIM = 8
USER = "ctl-user"
FORGET = "ctl-forget-me"


class Ctl(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.pb, cls.ev = aisle_env.protos()
        cls.procs = aisle_env.Procs()
        try:
            _, cls.redis = cls.procs.redis()
            _, cls.brokers = cls.procs.kafka()
            producer = Producer({"bootstrap.servers": cls.brokers, "linger.ms": 1})
            for i in range(30):
                v = [0.0] * DIM
                v[i % DIM] = 1.0
                item = cls.ev.CatalogItem(item_id="k%02d" % i, title="Coffee thing %d" % i,
                                          creator_id="c%d" % (i % 3),
                                          creator_name="Barista %d" % (i % 3), category="coffee",
                                          price_cents=1000 + 100 * i, in_stock=True,
                                          brand="Crema", embedding=v)
                producer.produce("aisle.catalog", key=item.item_id, value=item.SerializeToString())
            for user, i in [(USER, 0), (USER, 1), (USER, 2), (FORGET, 9)]:
                s = cls.ev.Signal(event_id=uuid.uuid4().hex, user_id=user, kind=cls.ev.PURCHASE,
                                  item_id="k%02d" % i, ts_ms=int(time.time() * 1000))
                producer.produce("aisle.signals", key=user, value=s.SerializeToString())
            producer.flush(10)
            cls.serve, http = cls.procs.start(
                "serve", [aisle_env.aisle_binary(), "serve", "--insecure", "--listen", "127.0.0.1:0",
                          "--http-listen", "127.0.0.1:0", "--kafka-brokers", cls.brokers,
                          "--redis", cls.redis, "--dim", str(DIM)], "aisle serve: http on port ")
            cls.http = "127.0.0.1:" + http
            cls.server = "127.0.0.1:" + cls.serve.stdout.readline().decode().rsplit(" ", 1)[1].strip()
            cls.procs.ingest(cls.brokers, cls.redis)
            for user in (USER, FORGET):
                aisle_env.wait_for(lambda: cls.ctl("profile", "get", user).returncode == 0, 20,
                                   "the user's signals to reach the profile", 0.2)
            aisle_env.wait_for(lambda: json.loads(cls.ctl("index", "status", "--json").stdout)
                               ["catalog_caught_up"], 20, "the catalog", 0.2)
        except Exception:
            cls.procs.close()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.procs.close_checked()

    @classmethod
    def ctl(cls, *args, server=None):
        return subprocess.run([aisle_env.aisle_binary(), "ctl", "--server", server or cls.server,
                               "--http", cls.http, "--kafka-brokers", cls.brokers] + list(args),
                              capture_output=True, text=True, timeout=60)

    def test_recommend(self):
        r = self.ctl("recommend", USER, "--limit", "3")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("TITLE", r.stdout)
        self.assertRegex(r.stdout, r"request [0-9a-f]{8}-[0-9a-f]{6}")
        out = json.loads(self.ctl("recommend", USER, "--limit", "3", "--json").stdout)
        self.assertEqual(len(out["items"]), 3)
        self.assertTrue(all(it["reasons"] for it in out["items"]))
        # bought items are left out
        self.assertFalse({"k00", "k01", "k02"} & {it["item_id"] for it in out["items"]})

    def test_similar_and_exp(self):
        out = json.loads(self.ctl("similar", "k00", "--limit", "3", "--json").stdout)
        self.assertEqual(len(out["items"]), 3)
        self.assertNotIn("k00", {it["item_id"] for it in out["items"]})
        self.assertEqual(self.ctl("similar", "no-such-item").returncode, 4)  # NOT_FOUND
        r = subprocess.run([aisle_env.aisle_binary(), "ctl", "exp", "--redis", self.redis, "list"],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)

    def test_profile_get_and_delete(self):
        r = self.ctl("profile", "get", USER)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("items (weight, id)", r.stdout)
        p = json.loads(self.ctl("profile", "get", USER, "--json").stdout)
        self.assertEqual({i["id"] for i in p["items"]}, {"k00", "k01", "k02"})
        self.assertEqual(self.ctl("profile", "get", "nobody").returncode, 4)
        r = self.ctl("profile", "delete", FORGET)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("deleted", r.stdout)
        self.assertEqual(self.ctl("profile", "delete", FORGET, "--json").returncode, 4)
        self.assertEqual(self.ctl("profile", "get", FORGET).returncode, 4)

    def test_shop_streams(self):
        r = self.ctl("shop", USER, "coffee", "under", "$20", "--limit", "2")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("Coffee thing", r.stdout)
        chunks = [json.loads(l) for l in
                  self.ctl("shop", USER, "coffee", "--mode", "contemplating", "--json")
                  .stdout.splitlines()]
        self.assertGreater(len(chunks), 1)
        self.assertTrue(chunks[0]["items"] and chunks[0]["request_id"])
        self.assertTrue(chunks[-1]["done"])

    def test_index_and_catalog(self):
        r = self.ctl("index", "status")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("kind  flat", r.stdout)
        st = json.loads(self.ctl("index", "status", "--json").stdout)
        self.assertEqual(st["items"], 30)
        self.assertIsNone(st["snapshot"])
        item = json.loads(self.ctl("catalog", "get", "k05", "--json").stdout)
        self.assertEqual((item["title"], item["price_cents"]), ("Coffee thing 5", 1500))
        self.assertEqual(item["creator_name"], "Barista 2")
        self.assertIn("title  Coffee thing 5", self.ctl("catalog", "get", "k05").stdout)
        self.assertEqual(self.ctl("catalog", "get", "missing").returncode, 4)
        r = self.ctl("index", "reload")
        self.assertEqual(r.returncode, 0, r.stderr)
        aisle_env.wait_for(lambda: "no --snapshots directory" in self.procs.log(self.serve), 20,
                           "serve to get the reload", 0.2)

    def test_track_and_catalog_search(self):
        r = self.ctl("track", "ctl-tracked", "click", "k07")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertRegex(r.stdout, r"sent click by ctl-tracked on k07 \(event [0-9a-f]{32}\)")
        aisle_env.wait_for(lambda: self.ctl("profile", "get", "ctl-tracked").returncode == 0, 20,
                           "the tracked click in the profile", 0.2)
        p = json.loads(self.ctl("profile", "get", "ctl-tracked", "--json").stdout)
        self.assertEqual([i["id"] for i in p["items"]], ["k07"])
        self.assertEqual(self.ctl("track", "u", "stare", "k07").returncode, 2)
        r = self.ctl("catalog", "search", "thing", "2")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("Coffee thing 2 (coffee, Crema)", r.stdout)
        found = json.loads(self.ctl("catalog", "search", "thing 2", "--json").stdout)["items"]
        self.assertEqual({i["item_id"] for i in found}, {"k02", "k20", "k21", "k22", "k23", "k24",
                                                         "k25", "k26", "k27", "k28", "k29"})

    def test_exit_codes(self):
        self.assertEqual(self.ctl("recommend", "").returncode, 1)  # INVALID_ARGUMENT
        r = self.ctl("recommend", USER, server="127.0.0.1:1")
        self.assertEqual(r.returncode, 3, r.stderr)
        self.assertIn("UNAVAILABLE", r.stderr)
        self.assertEqual(self.ctl("bogus").returncode, 2)
        self.assertEqual(self.ctl("recommend").returncode, 2)
        self.assertEqual(self.ctl("shop", USER).returncode, 2)  # no query


if __name__ == "__main__":
    unittest.main(verbosity=2)
