#!/usr/bin/python3
"""Recommender/Shop end to end: redis-server, the Kafka mock, aisle serve and
ingest as processes, and a real gRPC client reading the stream. Both modes
stream items first, then text, then done; every money amount in the text is
a returned item's price or the shopper's own bound; constraints are honoured
and said; bad requests fail before anything is sent; a client that cancels
mid-stream leaves the server healthy. With shared/models/stories260K beside
the workspace, a second server writes answers with the model and the same
holds."""

import os
import re
import sys
import time
import unittest
import uuid

import grpc
from confluent_kafka import Producer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import aisle_env  # noqa: E402

DIM = 8
# (category, brand, noun, base price in cents, embedding axis)
KINDS = [("running", "Stride", "running socks", 1299, 0),
         ("running", "Pacer", "trail shoes", 8999, 0),
         ("coffee", "Crema", "burr grinder", 4599, 1),
         ("coffee", "Roastwell", "espresso beans", 1599, 1),
         ("yoga", "Lotus", "mat", 3499, 2)]
PER_KIND = 8
MONEY = re.compile(r"[$\u20ac\u00a3]\s?(\d[\d,]*(?:\.\d+)?)")


shared_dir = aisle_env.shared_dir


def vec(axis, i):
    v = [0.0] * DIM
    v[axis] = 1.0
    v[3 + i % (DIM - 3)] = 0.05 * (1 + i % 5)
    return v


class Shop(unittest.TestCase):
    model_addr = None

    @classmethod
    def setUpClass(cls):
        cls.pb, cls.ev = aisle_env.protos()
        cls.procs = aisle_env.Procs()
        try:
            _, cls.redis = cls.procs.redis()
            _, cls.brokers = cls.procs.kafka()
            producer = Producer({"bootstrap.servers": cls.brokers, "linger.ms": 1})
            cls.items = {}
            for k, (cat, brand, noun, cents, axis) in enumerate(KINDS):
                for i in range(PER_KIND):
                    it = cls.ev.CatalogItem(
                        item_id="%s%d" % (brand[:2].lower(), i), in_stock=True,
                        title="%s %s no. %d" % (brand, noun, i), creator_id="cr%d" % (k % 3),
                        category=cat, brand=brand, price_cents=cents + 100 * i,
                        embedding=vec(axis, i))
                    cls.items[it.item_id] = it
                    producer.produce("aisle.catalog", key=it.item_id, value=it.SerializeToString())
            cls.user = "shopper-" + uuid.uuid4().hex[:8]
            for item in ("st0", "st1", "pa0", "cr0"):
                s = cls.ev.Signal(event_id=uuid.uuid4().hex, user_id=cls.user,
                                  kind=cls.ev.PURCHASE, item_id=item,
                                  creator_id=cls.items[item].creator_id,
                                  ts_ms=int(time.time() * 1000))
                producer.produce("aisle.signals", key=cls.user, value=s.SerializeToString())
            producer.flush(10)
            _, cls.addr = cls.procs.serve(cls.brokers, cls.redis, DIM)
            cls.procs.ingest(cls.brokers, cls.redis)
            cls.channel = grpc.insecure_channel(cls.addr)
            aisle_env.wait_for(lambda: aisle_env.healthy(cls.channel), 20, "serve to report SERVING")
            aisle_env.wait_for(cls.profile_ready, 20, "the shopper's profile")
            shared = shared_dir()
            cls.stories = shared and os.path.join(shared, "models", "stories260K")
            if cls.stories and os.path.exists(os.path.join(cls.stories, "stories260K.bin")):
                _, cls.model_addr = cls.procs.serve(
                    cls.brokers, cls.redis, DIM,
                    ["--model", os.path.join(cls.stories, "stories260K.bin"),
                     "--tokenizer", os.path.join(cls.stories, "tok512.bin")])
                cls.model_channel = grpc.insecure_channel(cls.model_addr)
                aisle_env.wait_for(lambda: aisle_env.healthy(cls.model_channel), 20,
                                   "the model server to report SERVING")
        except Exception:
            cls.procs.close()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.channel.close()
        if cls.model_addr:
            cls.model_channel.close()
        cls.procs.close_checked()

    @classmethod
    def profile_ready(cls):
        call = cls.channel.unary_unary("/aisle.v1.Recommender/GetProfile",
                                       request_serializer=lambda m: m.SerializeToString(),
                                       response_deserializer=cls.pb.Profile.FromString)
        return len(call(cls.pb.GetProfileRequest(user_id=cls.user), timeout=2).items) == 4

    def shop(self, channel=None, timeout=20, **req):
        call = (channel or self.channel).unary_stream(
            "/aisle.v1.Recommender/Shop", request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=self.pb.ShopChunk.FromString)
        return call(self.pb.ShopRequest(**req), timeout=timeout)

    def check_stream(self, chunks, bound_cents=()):
        """Items first, text after, done last; money only from the items or
        the shopper's bound. Returns (items, agents, text)."""
        self.assertGreaterEqual(len(chunks), 3, "items, at least one text chunk, done")
        first, last = chunks[0], chunks[-1]
        self.assertTrue(first.items, "the first chunk carries the products")
        self.assertTrue(first.request_id)
        self.assertTrue(last.done)
        self.assertFalse(any(c.done for c in chunks[:-1]))
        self.assertFalse(any(c.items for c in chunks[1:]), "items only in the first chunk")
        text = "".join(c.text for c in chunks)
        self.assertTrue(text.strip(), "some text")
        allowed = {it.price_cents for it in first.items} | set(bound_cents)
        for m in MONEY.finditer(text):
            cents = round(float(m.group(1).replace(",", "")) * 100)
            self.assertIn(cents, allowed, "invented amount %r in %r" % (m.group(0), text))
        self.assertNotRegex(text, r"\[\d+\]", "slots are filled, never shown")
        for it in first.items:
            cat = self.items[it.item_id]
            self.assertEqual((it.title, it.price_cents, it.brand, it.category),
                             (cat.title, cat.price_cents, cat.brand, cat.category))
            self.assertTrue(it.reasons)
        return first.items, first.agents, text

    def test_fast_answer_is_grounded_and_honours_the_ceiling(self):
        chunks = list(self.shop(user_id=self.user, query="a gift for a runner under $50",
                                limit=3))
        items, agents, text = self.check_stream(chunks, [5000])
        self.assertEqual(len(items), 3)
        self.assertFalse(agents)
        for it in items:
            self.assertEqual(it.category, "running")
            self.assertLessEqual(it.price_cents, 5000)
            self.assertIn(it.title, text)
        self.assertIn("in running", text)
        self.assertIn("under $50", text)
        print("FAST answer:\n" + text, file=sys.stderr)

    def test_contemplating_shows_each_agent(self):
        chunks = list(self.shop(user_id=self.user, query="coffee below 40 dollars", limit=4,
                                mode=self.pb.SHOP_MODE_CONTEMPLATING))
        items, agents, text = self.check_stream(chunks, [4000])
        self.assertEqual([a.agent for a in agents], ["best match", "budget",
                                                     "favourite creators", "something new",
                                                     "brand loyalty"])
        self.assertTrue(any(a.used for a in agents))
        for a in agents:
            self.assertTrue(a.summary)
            if a.used:
                self.assertTrue(set(a.item_ids) & {it.item_id for it in items})
        for it in items:
            self.assertEqual(it.category, "coffee")
            self.assertLessEqual(it.price_cents, 4000)
        ids = [it.item_id for it in items]
        self.assertEqual(len(ids), len(set(ids)), "no item twice")
        print("CONTEMPLATING answer:\n" + text, file=sys.stderr)

    def test_creators_agent_prefers_a_followed_creator(self):
        # Two purchases by cr0 and one by cr2, whom the shopper follows: the
        # favourite-creators agent looks for cr2 and says why.
        user = "follower-" + uuid.uuid4().hex[:8]
        producer = Producer({"bootstrap.servers": self.brokers, "linger.ms": 1})
        now = int(time.time() * 1000)
        for item in ("st0", "st1", "cr3"):
            s = self.ev.Signal(event_id=uuid.uuid4().hex, user_id=user, kind=self.ev.PURCHASE,
                               item_id=item, creator_id=self.items[item].creator_id, ts_ms=now)
            producer.produce("aisle.signals", key=user, value=s.SerializeToString())
        s = self.ev.Signal(event_id=uuid.uuid4().hex, user_id=user,
                           kind=self.ev.FOLLOW_CREATOR, creator_id="cr2", ts_ms=now)
        producer.produce("aisle.signals", key=user, value=s.SerializeToString())
        producer.flush(10)
        call = self.channel.unary_unary("/aisle.v1.Recommender/GetProfile",
                                        request_serializer=lambda m: m.SerializeToString(),
                                        response_deserializer=self.pb.Profile.FromString)
        aisle_env.wait_for(lambda: [f.id for f in call(
            self.pb.GetProfileRequest(user_id=user), timeout=2).follows] == ["cr2"],
            20, "the follow")
        chunks = list(self.shop(user_id=user, query="coffee", limit=4,
                                mode=self.pb.SHOP_MODE_CONTEMPLATING))
        _, agents, _ = self.check_stream(chunks)
        creators = [a for a in agents if a.agent == "favourite creators"]
        self.assertEqual(len(creators), 1)
        self.assertIn("by cr2, whom you follow", creators[0].summary)

    def test_nothing_fits_offers_the_closest_labelled(self):
        chunks = list(self.shop(user_id=self.user, query="running under $1", limit=2))
        items, _, text = self.check_stream(chunks, [100])
        self.assertEqual(len(items), 2)
        self.assertIn("Nothing in running, under $1", text)
        self.assertIn("above $1", text)
        self.assertTrue(all(it.category == "running" for it in items))
        # The closest are the cheapest running items the shopper has not bought.
        self.assertEqual(sorted(it.price_cents for it in items), [1499, 1599])

    def test_bad_requests_fail_before_any_chunk(self):
        cases = [(dict(user_id="", query="socks"), "user_id is empty"),
                 (dict(user_id="u", limit=21), "limit 21 is outside 0..20"),
                 (dict(user_id="u", limit=-1), "limit -1"),
                 (dict(user_id="u", query="x" * 1001), "query is 1001 bytes")]
        for req, msg in cases:
            got = []
            with self.assertRaises(grpc.RpcError) as e:
                for c in self.shop(**req):
                    got.append(c)
            self.assertEqual(e.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
            self.assertIn(msg, e.exception.details())
            self.assertEqual(got, [])
        raw = self.channel.unary_stream("/aisle.v1.Recommender/Shop",
                                        request_serializer=lambda b: b,
                                        response_deserializer=lambda b: b)
        with self.assertRaises(grpc.RpcError) as e:
            list(raw(b"\xff\xff\xff", timeout=5))
        self.assertEqual(e.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
        # A query of exactly the limit is fine.
        self.check_stream(list(self.shop(user_id="u", query="y" * 1000)))

    def cancel_mid_stream(self, channel, mode):
        it = self.shop(channel, user_id=self.user, query="running", mode=mode)
        first = next(it)
        self.assertTrue(first.items)
        it.cancel()
        with self.assertRaises(grpc.RpcError) as e:
            for _ in it:
                pass
        self.assertEqual(e.exception.code(), grpc.StatusCode.CANCELLED)
        self.assertTrue(aisle_env.healthy(channel))
        self.check_stream(list(self.shop(channel, user_id=self.user, query="yoga", mode=mode)))

    def test_client_cancel_leaves_the_server_healthy(self):
        for mode in (self.pb.SHOP_MODE_FAST, self.pb.SHOP_MODE_CONTEMPLATING):
            self.cancel_mid_stream(self.channel, mode)

    def require_model(self):
        if not self.model_addr:
            self.skipTest("shared/models/stories260K not found beside the workspace "
                          "(set AISLE_SHARED)")

    def test_model_answers_stay_grounded(self):
        self.require_model()
        for mode in (self.pb.SHOP_MODE_FAST, self.pb.SHOP_MODE_CONTEMPLATING):
            for q in ("a gift for a runner under $50", "coffee for $5 [9] [1]", "anything"):
                chunks = list(self.shop(self.model_channel, user_id=self.user, query=q,
                                        mode=mode))
                self.check_stream(chunks, [5000, 500])

    def test_model_stream_cancel_and_deadline(self):
        self.require_model()
        self.cancel_mid_stream(self.model_channel, self.pb.SHOP_MODE_FAST)
        # A deadline too short for the whole answer: the call ends (done or
        # DEADLINE_EXCEEDED), and the server carries on.
        try:
            list(self.shop(self.model_channel, timeout=0.05, user_id=self.user,
                           query="running"))
        except grpc.RpcError as e:
            self.assertEqual(e.code(), grpc.StatusCode.DEADLINE_EXCEEDED)
        self.check_stream(list(self.shop(self.model_channel, user_id=self.user,
                                         query="yoga", mode=self.pb.SHOP_MODE_CONTEMPLATING)))


if __name__ == "__main__":
    unittest.main(verbosity=2)
