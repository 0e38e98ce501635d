#!/usr/bin/python3
"""End to end on real parts: redis-server, the Kafka mock cluster (aisle
kafka-mock), aisle serve and aisle ingest as processes, and a real gRPC
client. Catalog items form two separated embedding clusters, A and B; a
user's signals on A bring unseen A items; signals on B shift the answer to
B within a second; malformed Kafka messages and gRPC bodies are survived
with clear errors."""

import os
import signal
import sys
import time
import unittest
import uuid

import grpc
from confluent_kafka import Consumer, Producer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import aisle_env  # noqa: E402

DIM = 8
N_PER_CLUSTER = 30


def cluster_vec(cluster, i):
    v = [0.0] * DIM
    v[0 if cluster == "A" else 1] = 1.0
    v[2 + i % (DIM - 2)] = 0.1 + 0.01 * (i % 7)
    return v


class EndToEnd(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.pb, cls.ev = aisle_env.protos()
        cls.procs = aisle_env.Procs()
        try:
            _, cls.redis = cls.procs.redis()
            _, cls.brokers = cls.procs.kafka()
            cls.producer = Producer({"bootstrap.servers": cls.brokers, "linger.ms": 1})
            for c in "AB":
                for i in range(N_PER_CLUSTER):
                    cls.put_item(c, i)
            cls.producer.flush(10)
            cls.serve, cls.addr = cls.procs.serve(cls.brokers, cls.redis, DIM)
            cls.ingest = cls.procs.ingest(cls.brokers, cls.redis)
            cls.channel = grpc.insecure_channel(cls.addr)
            aisle_env.wait_for(cls.healthy, 20, "serve to report SERVING")
        except Exception:
            cls.procs.close()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.channel.close()
        cls.procs.close_checked()

    @classmethod
    def put_item(cls, c, i, **kw):
        fields = dict(item_id="%s%02d" % (c, i), title="Item %s%02d" % (c, i),
                      creator_id="creator-" + c, category="cat-" + c, price_cents=1000 + i,
                      in_stock=True, brand="Brand" + c, embedding=cluster_vec(c, i))
        fields.update(kw)
        msg = cls.ev.CatalogItem(**fields)
        cls.producer.produce("aisle.catalog", key=msg.item_id, value=msg.SerializeToString())

    @classmethod
    def healthy(cls):
        return aisle_env.healthy(cls.channel)

    def rpc(self, method, req, resp_type, timeout=5):
        call = self.channel.unary_unary("/aisle.v1.Recommender/" + method,
                                        request_serializer=lambda m: m.SerializeToString(),
                                        response_deserializer=resp_type.FromString)
        return call(req, timeout=timeout)

    def recommend(self, user, limit=10):
        return self.rpc("Recommend", self.pb.RecommendRequest(user_id=user, limit=limit),
                        self.pb.RecommendResponse)

    def signal(self, user, item, kind=None, weight=0.0, ts_ms=None, event_id=None):
        s = self.ev.Signal(event_id=event_id or uuid.uuid4().hex, user_id=user,
                           kind=kind or self.ev.CLICK, item_id=item,
                           creator_id="creator-" + item[0],
                           ts_ms=ts_ms or int(time.time() * 1000), weight=weight)
        self.producer.produce("aisle.signals", key=user, value=s.SerializeToString())

    def test_cold_user_gets_popular_in_stock_items(self):
        r = self.recommend("nobody-%s" % uuid.uuid4().hex, 5)
        self.assertEqual(len(r.items), 5)
        self.assertTrue(r.request_id)
        for it in r.items:
            self.assertTrue(it.reasons, "every item says why")

    def test_signals_steer_and_shift_recommendations(self):
        user = "shopper-" + uuid.uuid4().hex[:8]
        seen_a = ["A%02d" % i for i in range(5)]
        for item in seen_a:
            self.signal(user, item)
        self.producer.flush(5)
        aisle_env.wait_for(lambda: len(self.profile(user).items) == 5, 10,
                           "the profile to hold 5 items")
        r = self.recommend(user, 10)
        ids = [it.item_id for it in r.items]
        self.assertEqual(len(ids), 10)
        self.assertTrue(all(i.startswith("A") for i in ids), ids)
        self.assertFalse(set(ids) & set(seen_a), "seen items are left out")
        for it in r.items:
            self.assertTrue(any("Similar to" in x for x in it.reasons), it.reasons)
            self.assertEqual(it.category, "cat-A")

        # Strong interest in B: the answer shifts to B within a second.
        start = time.time()
        for i in range(3):
            self.signal(user, "B%02d" % i, kind=self.ev.PURCHASE, weight=5)
        self.producer.flush(5)
        shifted = None
        while time.time() - start < 5:
            top = self.recommend(user, 3).items
            if top and all(it.item_id.startswith("B") for it in top):
                shifted = time.time() - start
                break
            time.sleep(0.005)
        self.assertIsNotNone(shifted, "recommendations never shifted to B")
        self.assertLess(shifted, 1.0, "shift took %.3fs" % shifted)
        print("event-to-recommendation shift: %.1f ms" % (shifted * 1000), file=sys.stderr)

    def test_out_of_stock_and_deleted_items_are_left_out(self):
        user = "stock-" + uuid.uuid4().hex[:8]
        self.put_item("A", 10, in_stock=False)
        self.producer.produce("aisle.catalog", key="A11", value=self.ev.CatalogItem(
            item_id="A11", deleted=True).SerializeToString())
        self.signal(user, "A12")
        self.producer.flush(5)
        aisle_env.wait_for(lambda: len(self.profile(user).items) == 1, 10, "the profile")
        deadline = time.time() + 5
        while time.time() < deadline:
            ids = [it.item_id for it in self.recommend(user, 40).items]
            if "A10" not in ids and "A11" not in ids:
                break
            time.sleep(0.05)
        self.assertNotIn("A10", ids)
        self.assertNotIn("A11", ids)
        self.assertNotIn("A12", ids)

    def profile(self, user):
        return self.rpc("GetProfile", self.pb.GetProfileRequest(user_id=user), self.pb.Profile)

    def test_get_profile_shows_weighted_items_and_creators(self):
        user = "profile-" + uuid.uuid4().hex[:8]
        self.signal(user, "B05", kind=self.ev.VIEW)
        self.signal(user, "B06", kind=self.ev.PURCHASE)
        self.producer.flush(5)
        aisle_env.wait_for(lambda: len(self.profile(user).items) == 2, 10, "the profile")
        p = self.profile(user)
        self.assertEqual([e.id for e in p.items], ["B06", "B05"], "heaviest first")
        self.assertGreater(p.items[0].weight, p.items[1].weight)
        self.assertEqual([e.id for e in p.creators], ["creator-B"])
        self.assertGreater(p.last_active_ms, 0)
        # Learned from the catalog topic by ingest.
        self.assertEqual([e.id for e in p.categories], ["cat-B"])
        self.assertEqual([e.id for e in p.brands], ["BrandB"])
        self.assertEqual(sorted(e.id for e in p.seen), ["B05", "B06"])
        self.assertEqual([e.id for e in p.purchased], ["B06"])
        self.assertGreater(p.purchased[0].last_ms, 0)

    def test_delete_profile_forgets_the_user(self):
        user = "forget-" + uuid.uuid4().hex[:8]
        self.signal(user, "A03")
        self.producer.flush(5)
        aisle_env.wait_for(lambda: len(self.profile(user).items) == 1, 10, "the profile")
        resp = self.rpc("DeleteProfile", self.pb.DeleteProfileRequest(user_id=user),
                        self.pb.DeleteProfileResponse)
        self.assertTrue(resp.existed)
        p = self.profile(user)
        self.assertEqual((len(p.items), len(p.creators), p.last_active_ms), (0, 0, 0))
        resp = self.rpc("DeleteProfile", self.pb.DeleteProfileRequest(user_id=user),
                        self.pb.DeleteProfileResponse)
        self.assertFalse(resp.existed)

    def test_replayed_event_counts_once(self):
        user = "replay-" + uuid.uuid4().hex[:8]
        ts = int(time.time() * 1000)
        for _ in range(3):
            self.signal(user, "A20", kind=self.ev.VIEW, ts_ms=ts, event_id="same-event")
        self.signal(user, "A21", kind=self.ev.VIEW, ts_ms=ts)
        self.producer.flush(5)
        aisle_env.wait_for(lambda: len(self.profile(user).items) == 2, 10, "the profile")
        w = {e.id: e.weight for e in self.profile(user).items}
        self.assertAlmostEqual(w["A20"], w["A21"], places=6)

    def test_malformed_kafka_messages_go_to_the_dead_letter_topic(self):
        marker = uuid.uuid4().hex.encode()
        bad_signal = self.ev.Signal(event_id="e", user_id="", kind=self.ev.VIEW,
                                    item_id="A01", ts_ms=int(time.time() * 1000))
        self.producer.produce("aisle.signals", key=b"garbage", value=b"\xff\xff" + marker)
        self.producer.produce("aisle.signals", key=b"invalid",
                              value=bad_signal.SerializeToString())
        # A bad catalog item (wrong embedding length) is skipped by serve.
        self.producer.produce("aisle.catalog", key="bad", value=self.ev.CatalogItem(
            item_id="bad", embedding=[1.0, 2.0]).SerializeToString())
        self.producer.produce("aisle.catalog", key="junk", value=b"\xff\xfe\xfd")
        self.producer.flush(5)

        c = Consumer({"bootstrap.servers": self.brokers, "group.id": uuid.uuid4().hex,
                      "auto.offset.reset": "earliest", "session.timeout.ms": 6000})
        c.subscribe(["aisle.signals.dlq"])
        found = {}
        deadline = time.time() + 20
        try:
            while time.time() < deadline and len(found) < 2:
                m = c.poll(0.2)
                if m is None or m.error():
                    continue
                h = {k: v.decode() for k, v in (m.headers() or [])}
                if m.key() in (b"garbage", b"invalid"):
                    found[m.key()] = (m.value(), h)
        finally:
            c.close()
        self.assertIn(b"garbage", found)
        value, h = found[b"garbage"]
        self.assertTrue(value.endswith(marker), "the original bytes are kept")
        self.assertEqual(h["aisle-origin-topic"], "aisle.signals")
        self.assertIn("aisle-origin-offset", h)
        self.assertIn("not a Signal", h["aisle-error"])
        self.assertIn("user_id is empty", found[b"invalid"][1]["aisle-error"])
        # Both servers carry on.
        self.assertIsNone(self.ingest.poll())
        self.assertIsNone(self.serve.poll())
        self.test_signals_steer_and_shift_recommendations()

    def test_malformed_grpc_requests_get_clear_errors(self):
        raw = self.channel.unary_unary("/aisle.v1.Recommender/Recommend",
                                       request_serializer=lambda b: b,
                                       response_deserializer=lambda b: b)
        with self.assertRaises(grpc.RpcError) as e:
            raw(b"\xff\xff\xff", timeout=5)
        self.assertEqual(e.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
        self.assertIn("not a valid RecommendRequest", e.exception.details())

        with self.assertRaises(grpc.RpcError) as e:
            self.recommend("")
        self.assertEqual(e.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
        with self.assertRaises(grpc.RpcError) as e:
            self.recommend("someone", limit=1000)
        self.assertEqual(e.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)

        unknown = self.channel.unary_unary("/aisle.v1.Recommender/NoSuchMethod",
                                           request_serializer=lambda b: b,
                                           response_deserializer=lambda b: b)
        with self.assertRaises(grpc.RpcError) as e:
            unknown(b"", timeout=5)
        self.assertEqual(e.exception.code(), grpc.StatusCode.UNIMPLEMENTED)
        self.assertTrue(self.healthy())

    def test_zz_sigterm_shuts_down_gracefully(self):
        # Runs last (alphabetical order): a second server, stopped mid-load.
        p, addr = self.procs.serve(self.brokers, self.redis, DIM)
        ch = grpc.insecure_channel(addr)
        call = ch.unary_unary("/aisle.v1.Recommender/Recommend",
                              request_serializer=lambda m: m.SerializeToString(),
                              response_deserializer=self.pb.RecommendResponse.FromString)
        futures = [call.future(self.pb.RecommendRequest(user_id="u%d" % i), timeout=10)
                   for i in range(200)]
        futures[0].result()  # the server is taking calls: stop it mid-stream
        p.send_signal(signal.SIGTERM)
        ok = 0
        for f in futures:
            try:
                f.result()
                ok += 1
            except grpc.RpcError as e:
                # Calls that reach the server after shutdown began are
                # refused; calls it had accepted must finish.
                self.assertIn(e.code(), (grpc.StatusCode.UNAVAILABLE,
                                         grpc.StatusCode.CANCELLED))
        self.assertEqual(p.wait(15), 0)
        log = self.procs.log(p)
        self.assertIn("every call in flight finished", log)
        self.assertNotIn("cancelling calls in flight", log)
        ch.close()
        self.assertGreater(ok, 0)
        print("graceful stop: %d of 200 calls completed" % ok, file=sys.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
