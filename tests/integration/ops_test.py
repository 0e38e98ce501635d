#!/usr/bin/python3
"""The operator's view of real processes: the HTTP endpoint of aisle serve
and aisle ingest (Prometheus /metrics, /healthz, /readyz), counters that move
with traffic, readiness that flips when Redis stops, and logs that are one
JSON object per line carrying the request id the client got back."""

import json
import os
import re
import signal
import subprocess
import sys
import time
import unittest
import urllib.error
import urllib.request
import uuid

import grpc
from confluent_kafka import Producer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import aisle_env  # noqa: E402

DIM = 8
SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$')


def http_get(port, path):
    """(status, body) of GET path on the endpoint."""
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path), timeout=5) as r:
            return r.status, r.read().decode(), r.headers.get("Content-Type")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(), e.headers.get("Content-Type")


def scrape(port):
    """{'name{labels}': value} of every sample, checking the text format on
    the way: each family has HELP and TYPE before its samples."""
    status, body, ctype = http_get(port, "/metrics")
    assert status == 200 and ctype.startswith("text/plain; version=0.0.4"), (status, ctype)
    samples, typed = {}, {}
    for line in body.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ", 3)
            typed[name] = kind
        elif line and not line.startswith("#"):
            m = SAMPLE.match(line)
            assert m, "not a sample line: %r" % line
            base = re.sub(r"_(bucket|sum|count)$", "", m.group(1))
            assert m.group(1) in typed or base in typed, "no TYPE for " + line
            samples[m.group(1) + (m.group(2) or "")] = float(m.group(3))
    return samples


class Ops(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.pb, cls.ev = aisle_env.protos()
        cls.procs = aisle_env.Procs()
        try:
            cls.redis_proc, cls.redis = cls.procs.redis()
            _, cls.brokers = cls.procs.kafka()
            cls.producer = Producer({"bootstrap.servers": cls.brokers, "linger.ms": 1})
            for i in range(40):
                v = [0.0] * DIM
                v[i % DIM] = 1.0
                item = cls.ev.CatalogItem(item_id="i%02d" % i, title="Item %d" % i,
                                          creator_id="c1", category="cat", price_cents=100 + i,
                                          in_stock=True, brand="B", embedding=v)
                cls.producer.produce("aisle.catalog", key=item.item_id,
                                     value=item.SerializeToString())
            cls.producer.produce("aisle.catalog", key="bad", value=b"\xff\xff not protobuf")
            cls.producer.flush(10)
            cls.serve, http = cls.procs.start(
                "serve", [aisle_env.aisle_binary(), "serve", "--insecure", "--listen", "127.0.0.1:0",
                          "--http-listen", "127.0.0.1:0", "--kafka-brokers", cls.brokers,
                          "--redis", cls.redis, "--dim", str(DIM), "--log-level", "debug"],
                "aisle serve: http on port ")
            cls.serve_http = int(http)
            line = cls.serve.stdout.readline().decode()
            cls.addr = "127.0.0.1:" + line.rsplit(" ", 1)[1].strip()
            cls.ingest, http = cls.procs.start(
                "ingest", [aisle_env.aisle_binary(), "ingest", "--http-listen", "127.0.0.1:0",
                           "--kafka-brokers", cls.brokers, "--redis", cls.redis],
                "aisle ingest: http on port ")
            cls.ingest_http = int(http)
            cls.channel = grpc.insecure_channel(cls.addr)
            aisle_env.wait_for(lambda: http_get(cls.serve_http, "/readyz")[0] == 200, 20,
                               "serve to be ready")
        except Exception:
            cls.procs.close()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.channel.close()
        cls.procs.close_checked()

    def recommend(self, user):
        call = self.channel.unary_unary("/aisle.v1.Recommender/Recommend",
                                        request_serializer=lambda m: m.SerializeToString(),
                                        response_deserializer=self.pb.RecommendResponse.FromString)
        return call(self.pb.RecommendRequest(user_id=user, limit=5), timeout=5)

    def signal(self, user, item):
        s = self.ev.Signal(event_id=uuid.uuid4().hex, user_id=user, kind=self.ev.CLICK,
                           item_id=item, ts_ms=int(time.time() * 1000))
        self.producer.produce("aisle.signals", key=user, value=s.SerializeToString())

    def test_1_rpc_counter_moves_with_traffic(self):
        key = 'aisle_rpc_duration_seconds_count{method="Recommend",code="OK"}'
        before = scrape(self.serve_http).get(key, 0)
        for i in range(7):
            self.recommend("m%d" % i)
        after = scrape(self.serve_http)
        self.assertEqual(after[key] - before, 7)
        self.assertEqual(after['aisle_rpc_duration_seconds_bucket{method="Recommend",code="OK",'
                               'le="+Inf"}'], after[key])
        bad = 'aisle_rpc_duration_seconds_count{method="Recommend",code="INVALID_ARGUMENT"}'
        with self.assertRaises(grpc.RpcError):
            self.recommend("")
        self.assertEqual(scrape(self.serve_http)[bad], 1)

    def test_1b_shop_time_to_first_chunk(self):
        call = self.channel.unary_stream("/aisle.v1.Recommender/Shop",
                                         request_serializer=lambda m: m.SerializeToString(),
                                         response_deserializer=self.pb.ShopChunk.FromString)
        chunks = list(call(self.pb.ShopRequest(user_id="m1", query="items", limit=2), timeout=10))
        self.assertTrue(chunks[-1].done)
        m = scrape(self.serve_http)
        self.assertEqual(m['aisle_rpc_first_message_seconds_count{method="Shop"}'], 1)
        self.assertEqual(m['aisle_rpc_duration_seconds_count{method="Shop",code="OK"}'], 1)

    def test_2_serve_gauges(self):
        m = scrape(self.serve_http)
        self.assertEqual(m["aisle_catalog_items"], 40)
        self.assertEqual(m['aisle_catalog_updates_total{outcome="applied"}'], 40)
        self.assertEqual(m['aisle_catalog_updates_total{outcome="skipped"}'], 1)
        self.assertEqual(m['aisle_index_info{kind="flat",snapshot="none"}'], 1)
        self.assertEqual(m["aisle_catalog_caught_up"], 1)
        self.assertGreater(m["process_resident_memory_bytes"], 1 << 20)
        self.assertGreater(m["aisle_redis_request_duration_seconds_count"], 0)

    def test_3_ingest_counts_outcomes(self):
        applied = 'aisle_ingest_events_total{outcome="applied"}'
        dead = 'aisle_ingest_events_total{outcome="dead_lettered"}'
        before = scrape(self.ingest_http)
        for i in range(5):
            self.signal("ops-user", "i%02d" % i)
        self.producer.produce("aisle.signals", key="x", value=b"\xff garbage")
        self.producer.flush(10)
        aisle_env.wait_for(lambda: scrape(self.ingest_http)[applied] - before[applied] >= 5 and
                           scrape(self.ingest_http)[dead] - before[dead] >= 1, 20,
                           "ingest to count the signals", 0.1)
        m = scrape(self.ingest_http)
        self.assertEqual(m[applied] - before[applied], 5)
        self.assertEqual(m[dead] - before[dead], 1)
        self.assertGreaterEqual(m["aisle_ingest_consumed_messages_total"], 6)

        def lag():
            return [v for k, v in scrape(self.ingest_http).items()
                    if k.startswith("aisle_ingest_consumer_lag_messages{partition=")]
        # One series per partition of the signal topic; all caught up once
        # the batch is committed.
        aisle_env.wait_for(lambda: len(lag()) == 4 and sum(lag()) == 0, 20,
                           "the group's lag to reach 0", 0.2)

    def test_4_json_logs_carry_the_request_id(self):
        rid = self.recommend("log-user").request_id
        self.assertTrue(rid)
        lines = []
        with open(self.serve.logfile) as f:
            for line in f:
                if line.startswith("aisle: "):
                    continue  # the signal handler's own words, written raw
                rec = json.loads(line)
                for k in ("time", "level", "component", "message"):
                    self.assertIn(k, rec, line)
                self.assertRegex(rec["time"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
                lines.append(rec)
        self.assertGreater(len(lines), 3)
        mine = [r for r in lines if r.get("request_id") == rid]
        self.assertTrue(mine, "no log line carries request id " + rid)
        self.assertIn("log-user", mine[0]["message"])

    def test_5_probes_flip_when_redis_stops(self):
        self.assertEqual(http_get(self.serve_http, "/healthz")[:2], (200, "ok\n"))
        self.assertEqual(http_get(self.ingest_http, "/readyz")[0], 200)
        self.assertEqual(http_get(self.serve_http, "/nope")[0], 404)
        self.procs.stop(self.redis_proc)
        status, body, _ = http_get(self.serve_http, "/readyz")
        self.assertEqual(status, 503, body)
        self.assertIn("FAIL redis", body)
        self.assertIn("ok   catalog", body)
        self.assertEqual(http_get(self.ingest_http, "/readyz")[0], 503)
        self.assertEqual(http_get(self.serve_http, "/healthz")[0], 200)  # alive all the same
        # Recommend degrades to popular items without Redis; GetProfile fails.
        self.assertTrue(self.recommend("after-redis").degraded)
        get = self.channel.unary_unary("/aisle.v1.Recommender/GetProfile",
                                       request_serializer=lambda m: m.SerializeToString(),
                                       response_deserializer=self.pb.Profile.FromString)
        with self.assertRaises(grpc.RpcError):
            get(self.pb.GetProfileRequest(user_id="after-redis"), timeout=5)
        m = scrape(self.serve_http)
        self.assertGreater(m["aisle_redis_errors_total"], 0)
        self.assertEqual(m['aisle_rpc_duration_seconds_count{method="GetProfile",'
                           'code="UNAVAILABLE"}'], 1)


class ModelTokens(unittest.TestCase):
    """With a language model writing Shop answers, its tokens and their time
    are counted (tokens per second is the ratio of the rates)."""

    def test_model_tokens_are_counted(self):
        shared = aisle_env.shared_dir()
        stories = shared and os.path.join(shared, "models", "stories260K")
        if not stories or not os.path.exists(os.path.join(stories, "stories260K.bin")):
            self.skipTest("no shared/models/stories260K beside the workspace")
        pb, ev = aisle_env.protos()
        procs = aisle_env.Procs()
        try:
            _, redis = procs.redis()
            _, brokers = procs.kafka()
            subprocess.run([aisle_env.aisle_binary(), "synth", "--kafka-brokers", brokers,
                            "--items", "100", "--users", "0", "--dim", str(DIM)], check=True,
                           capture_output=True)
            serve, http = procs.start("serve", [
                aisle_env.aisle_binary(), "serve", "--insecure", "--listen", "127.0.0.1:0", "--http-listen",
                "127.0.0.1:0", "--kafka-brokers", brokers, "--redis", redis, "--dim", str(DIM),
                "--model", os.path.join(stories, "stories260K.bin"),
                "--tokenizer", os.path.join(stories, "tok512.bin")], "aisle serve: http on port ")
            addr = "127.0.0.1:" + serve.stdout.readline().decode().rsplit(" ", 1)[1].strip()
            aisle_env.wait_for(lambda: http_get(int(http), "/readyz")[0] == 200, 20, "ready")
            with grpc.insecure_channel(addr) as ch:
                call = ch.unary_stream("/aisle.v1.Recommender/Shop",
                                       request_serializer=lambda m: m.SerializeToString(),
                                       response_deserializer=pb.ShopChunk.FromString)
                self.assertTrue(list(call(pb.ShopRequest(user_id="m", query="toys"),
                                          timeout=20))[-1].done)
            m = scrape(int(http))
            self.assertGreater(m["aisle_model_generated_tokens_total"], 0)
            self.assertGreater(m["aisle_model_generation_seconds_total"], 0)
        finally:
            self.assertEqual(procs.close(), [])


class CatalogBehind(unittest.TestCase):
    """/readyz says not ready while the catalog cannot be read to its end
    (the broker is down from the start), and ready once it has been."""

    def test_readyz_waits_for_the_catalog(self):
        procs = aisle_env.Procs()
        try:
            _, redis = procs.redis()
            kafka, brokers = procs.start("kafka", [aisle_env.aisle_binary(), "kafka-mock",
                                                   "--partitions", "2"], "bootstrap=",
                                         stdin=subprocess.PIPE)
            subprocess.run([aisle_env.aisle_binary(), "synth", "--kafka-brokers", brokers,
                            "--items", "200", "--users", "0"], check=True, capture_output=True)
            def mock(command):
                kafka.stdin.write((command + "\n").encode())
                kafka.stdin.flush()
                self.assertEqual(kafka.stdout.readline().decode().strip(), "ok")
            mock("down 1")
            _, http = procs.start("serve", [
                aisle_env.aisle_binary(), "serve", "--insecure", "--listen", "127.0.0.1:0", "--http-listen",
                "127.0.0.1:0", "--kafka-brokers", brokers, "--redis", redis],
                "aisle serve: http on port ")
            time.sleep(1)
            status, body, _ = http_get(int(http), "/readyz")
            self.assertEqual(status, 503, body)
            self.assertIn("FAIL catalog", body)
            self.assertIn("ok   redis", body)
            mock("up 1")
            aisle_env.wait_for(lambda: http_get(int(http), "/readyz")[0] == 200, 30,
                               "readiness once the broker is back", 0.2)
            self.assertIn("200 items indexed", http_get(int(http), "/readyz")[1])
        finally:
            self.assertEqual(procs.close(), [])


if __name__ == "__main__":
    unittest.main(verbosity=2)
