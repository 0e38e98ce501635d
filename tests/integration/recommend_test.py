#!/usr/bin/python3
"""Recommend's pipeline through the real gRPC server, with real
redis-server, the Kafka mock cluster, aisle serve and aisle ingest. The
catalog has two embedding clusters, A (outdoor: trail shoes and tents) and
B (coffee), each from five creators, at prices from $10 to $159. Checked:
every bound of a request, the filter on every surface, a user with two
interests seeing both under MMR, a creator cap, ten pages of twenty
without a repeat, forged and foreign page tokens, the words of a query, a
query vector, the context item, SimilarItems, and Redis stopped (degraded
answers) and back (personalized again). Cluster A's creators have display
names, B's none (their ids stand in); the creator index suggests creators
near the user's tastes and follows the catalog as items come and go.
Trending items come in the user's categories and for a new user. serve
runs with --scorer (a surface "promo") and --rules (its pinned and boosted
items), and the rules file is edited while it runs."""

import os
import shutil
import signal
import subprocess
import tempfile
import sys
import time
import unittest
import uuid

import grpc
from confluent_kafka import Producer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import aisle_env  # noqa: E402

DIM = 8
N = 150  # items per cluster
NAMES = ["Mia Chen", "Leo Okafor", "Ava Rossi", "Noah Silva", "Zoe Nakamura"]  # cr-A0..4


def creator_name(item_id):
    """The display name the catalog gives item_id's creator ("" for B)."""
    return NAMES[int(item_id[1:]) % 5] if item_id[0] == "A" else ""


def vec(cluster, i):
    v = [0.0] * DIM
    v[0 if cluster == "A" else 1] = 1.0
    v[2 + i % (DIM - 2)] = 0.3 + 0.02 * (i % 11)
    return v


def title(cluster, i):
    if cluster == "A":
        return ("Trail shoe %d" if i % 2 else "Camping tent %d") % i
    return "Coffee mug %d" % i


# Surface promo (from the scorer file): B100 first, A003 second.
RULES = "aisle-rules 1\nsurface promo\npin B100 1\npin A003 2  # the season's pick\nend\n"


def write(path, text):
    """Replaces path's text at once, as a deployment would."""
    with open(path + ".new", "w") as f:
        f.write(text)
    os.replace(path + ".new", path)


class RecommendApi(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.pb, cls.ev = aisle_env.protos()
        cls.procs = aisle_env.Procs()
        try:
            cls.redis_port = aisle_env.free_port()
            cls.redis_p = cls.start_redis()
            _, cls.brokers = cls.procs.kafka()
            cls.producer = Producer({"bootstrap.servers": cls.brokers, "linger.ms": 1})
            for c in "AB":
                for i in range(N):
                    it = cls.ev.CatalogItem(
                        item_id="%s%03d" % (c, i), title=title(c, i),
                        creator_id="cr-%s%d" % (c, i % 5),
                        creator_name=NAMES[i % 5] if c == "A" else "",
                        category="outdoor" if c == "A" else "coffee",
                        brand="Brand%s%d" % (c, i % 3), price_cents=1000 + 100 * i,
                        in_stock=i % 37 != 5, embedding=vec(c, i))
                    cls.producer.produce("aisle.catalog", key=it.item_id,
                                         value=it.SerializeToString())
            cls.producer.flush(10)
            cls.tmp = tempfile.mkdtemp(prefix="aisle-recommend-test-")
            cls.scorer = os.path.join(cls.tmp, "scorer.txt")
            cls.rules = os.path.join(cls.tmp, "rules.txt")
            write(cls.scorer, "aisle-scorer 1\nsurface promo\nmmr 0.8\nend\n")
            write(cls.rules, RULES)
            cls.serve, cls.addr = cls.procs.serve(
                cls.brokers, cls.redis_addr(), DIM,
                extra=["--scorer", cls.scorer, "--rules", cls.rules])
            cls.ingest = cls.procs.ingest(cls.brokers, cls.redis_addr())
            cls.channel = grpc.insecure_channel(cls.addr)
            aisle_env.wait_for(lambda: aisle_env.healthy(cls.channel), 20, "serve to be ready")
        except Exception:
            cls.procs.close()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.channel.close()
        try:
            cls.procs.close_checked()
        finally:
            shutil.rmtree(cls.tmp, ignore_errors=True)

    @classmethod
    def redis_addr(cls):
        return "127.0.0.1:%d" % cls.redis_port

    @classmethod
    def start_redis(cls):
        p, _ = cls.procs.start("redis", ["redis-server", "--port", str(cls.redis_port),
                                         "--bind", "127.0.0.1", "--save", "",
                                         "--appendonly", "no"])
        aisle_env.wait_for(lambda: aisle_env._redis_ping(cls.redis_port), 10, "redis")
        return p

    def call(self, method, req, resp):
        rpc = self.channel.unary_unary("/aisle.v1.Recommender/" + method,
                                       request_serializer=lambda m: m.SerializeToString(),
                                       response_deserializer=resp.FromString)
        return rpc(req, timeout=10)

    def rec(self, **kw):
        return self.call("Recommend", self.pb.RecommendRequest(**kw), self.pb.RecommendResponse)

    def similar(self, **kw):
        return self.call("SimilarItems", self.pb.SimilarItemsRequest(**kw),
                         self.pb.RecommendResponse)

    def fails(self, fn, code, part, **kw):
        with self.assertRaises(grpc.RpcError) as e:
            fn(**kw)
        self.assertEqual(e.exception.code(), code, e.exception.details())
        self.assertIn(part, e.exception.details())

    def user_with(self, items, kind=None):
        """A new user whose profile holds items (clicked)."""
        user = "u-" + uuid.uuid4().hex[:10]
        for item, weight in items:
            s = self.ev.Signal(event_id=uuid.uuid4().hex, user_id=user,
                               kind=kind or self.ev.CLICK, item_id=item,
                               creator_id="cr-%s%d" % (item[0], int(item[1:]) % 5),
                               ts_ms=int(time.time() * 1000), weight=weight)
            self.producer.produce("aisle.signals", key=user, value=s.SerializeToString())
        self.producer.flush(5)
        aisle_env.wait_for(lambda: self.profile_size(user) == len(items), 10, "the profile")
        return user

    def follow(self, user, creator):
        """user follows creator; returns once GetProfile lists it alone."""
        s = self.ev.Signal(event_id=uuid.uuid4().hex, user_id=user, kind=self.ev.FOLLOW_CREATOR,
                           creator_id=creator, ts_ms=int(time.time() * 1000))
        self.producer.produce("aisle.signals", key=user, value=s.SerializeToString())
        self.producer.flush(5)
        aisle_env.wait_for(lambda: [f.id for f in self.call(
            "GetProfile", self.pb.GetProfileRequest(user_id=user), self.pb.Profile).follows]
            == [creator], 10, "the follow")

    def profile_size(self, user):
        try:
            return len(self.call("GetProfile", self.pb.GetProfileRequest(user_id=user),
                                 self.pb.Profile).items)
        except grpc.RpcError:
            return -1  # a connection to a Redis that was restarted is dropped once

    def test_bounds_are_invalid_argument(self):
        bad = grpc.StatusCode.INVALID_ARGUMENT
        self.fails(self.rec, bad, "limit 501 is outside 1..500", user_id="u", limit=501)
        self.fails(self.rec, bad, "unknown surface 'homepage'", user_id="u", surface="homepage")
        self.fails(self.rec, bad, "query_vector has 3 values", user_id="u",
                   query_vector=[1, 2, 3])
        self.fails(self.rec, bad, "query_vector[2] is not a finite", user_id="u",
                   query_vector=[0, 0, float("nan"), 0, 0, 0, 0, 0])
        self.fails(self.rec, bad, "min_price_cents 5000 is above max_price_cents 100",
                   user_id="u", filter=self.pb.Filter(min_price_cents=5000, max_price_cents=100))
        self.fails(self.rec, bad, "exclude_item_ids has 300 values", user_id="u",
                   filter=self.pb.Filter(exclude_item_ids=["x%d" % i for i in range(300)]))
        self.fails(self.rec, bad, "page_token", user_id="u", page_token="not-a-token")
        self.fails(self.similar, grpc.StatusCode.NOT_FOUND, "'nope' is not in the catalog",
                   item_id="nope")
        self.fails(self.similar, bad, "item_id is empty", item_id="")
        # 300 items, 8 of them out of stock: a cold user's page of 500 holds the rest.
        self.assertEqual(len(self.rec(user_id="cold-" + uuid.uuid4().hex, limit=500).items), 292)

    def test_filter_holds_on_every_surface(self):
        user = self.user_with([("A001", 0), ("B002", 0)])
        f = self.pb.Filter(max_price_cents=8000, exclude_brands=["BrandA1"],
                           exclude_creators=["cr-B0"], exclude_item_ids=["A003", "A005"])
        for surface in ("", "home", "product_page", "cart"):
            for kw in ({}, {"query": "coffee tent"}, {"context_item_id": "A010"},
                       {"query_vector": vec("B", 4)}):
                items = self.rec(user_id=user, limit=40, surface=surface, filter=f, **kw).items
                self.assertEqual(len(items), 40, (surface, kw))
                for it in items:
                    self.assertLessEqual(it.price_cents, 8000)
                    self.assertNotEqual(it.brand, "BrandA1")
                    self.assertNotEqual(it.creator_id, "cr-B0")
                    self.assertNotIn(it.item_id, ("A003", "A005", "A001", "B002"))
                    self.assertTrue(it.sources, it)
                    self.assertEqual(it.creator_name, creator_name(it.item_id) or it.creator_id)
                    self.assertTrue(any("Under $80, as you asked" in r or "$80 ceiling" in r
                                        for r in it.reasons), it.reasons)
        # In stock only unless asked: A005 is out of stock (5 % 37 == 5).
        ids = [it.item_id for it in self.rec(user_id=user, limit=500).items]
        self.assertNotIn("A005", ids)
        ids = [it.item_id for it in self.rec(user_id=user, limit=500, filter=self.pb.Filter(
            include_out_of_stock=True)).items]
        self.assertIn("A005", ids)

    def test_two_interests_both_on_page_one_under_mmr(self):
        user = self.user_with([("A001", 3), ("A002", 3), ("A003", 3), ("B001", 2), ("B002", 2)])
        plain = self.rec(user_id=user, limit=6).items
        self.assertTrue(all(it.category == "outdoor" for it in plain),
                        [it.item_id for it in plain])
        home = self.rec(user_id=user, limit=6, surface="home").items
        cats = {it.category for it in home}
        self.assertEqual(cats, {"outdoor", "coffee"}, [it.item_id for it in home])
        self.assertTrue(any("variety" in r for it in home for r in it.reasons))
        # Beside the page: its creators, best first, with why.
        r = self.rec(user_id=user, limit=6, surface="home")
        self.assertTrue(r.creators)
        page = {it.creator_id: it.creator_name for it in r.items}
        for c in r.creators:
            if c.creator_id not in page:  # the creator index's: checked below
                continue
            self.assertEqual(c.name, page[c.creator_id])
            self.assertTrue(any(x.startswith("Made ") for x in c.reasons), c.reasons)
        self.assertTrue(any("A creator you engage with" in x for c in r.creators
                            for x in c.reasons))

    def test_creator_names_in_items_and_reasons(self):
        user = self.user_with([("A000", 0), ("A005", 0)])  # both by cr-A0, Mia Chen
        items = self.rec(user_id=user, limit=20, surface="home").items
        self.assertTrue(items)
        for it in items:
            self.assertEqual(it.creator_name, creator_name(it.item_id) or it.creator_id)
        mine = [it for it in items if it.creator_id == "cr-A0"]
        self.assertTrue(mine, [it.creator_id for it in items])
        self.assertTrue(any(r in ("From Mia Chen, a creator you engage with",
                                  "New from Mia Chen, a creator you engage with")
                            for it in mine for r in it.reasons), [it.reasons for it in mine])

    def test_followed_creator_is_named_as_followed(self):
        user = self.user_with([("A000", 0)])  # by cr-A0, Mia Chen
        self.follow(user, "cr-A0")
        mine = [it for it in self.rec(user_id=user, limit=20, surface="home").items
                if it.creator_id == "cr-A0"]
        self.assertTrue(mine)
        self.assertTrue(any(r in ("From Mia Chen, whom you follow",
                                  "New from Mia Chen, whom you follow")
                            for it in mine for r in it.reasons), [it.reasons for it in mine])
        self.assertFalse(any("engage with" in r for it in mine for r in it.reasons))
        r = self.rec(user_id=user, limit=20, surface="home")
        self.assertIn("A creator you follow",
                      [x for c in r.creators if c.creator_id == "cr-A0" for x in c.reasons])

    def test_followed_creator_feeds_the_page_without_engagement(self):
        user = self.user_with([("A000", 0)])  # engages cr-A0 only
        self.follow(user, "cr-B2")
        r = self.rec(user_id=user, limit=20, surface="home")
        theirs = [it for it in r.items if it.creator_id == "cr-B2"]
        self.assertTrue(theirs, [(it.item_id, it.sources) for it in r.items])
        for it in theirs:
            self.assertIn("creators", it.sources)
            self.assertIn("New from cr-B2, whom you follow", it.reasons)
        self.assertIn("A creator you follow",
                      [x for c in r.creators if c.creator_id == "cr-B2" for x in c.reasons])

    def test_creator_index_suggests_new_creators_and_follows_catalog(self):
        user = self.user_with([("A000", 0), ("A005", 0)])  # cr-A0 only
        r = self.rec(user_id=user, limit=1)
        page = {it.creator_id for it in r.items}
        suggested = [c for c in r.creators if c.creator_id not in page]
        self.assertTrue(suggested, r.creators)
        for c in suggested:
            self.assertIn("Makes items like the ones you viewed", c.reasons)
            self.assertNotEqual(c.creator_id, "cr-A0")  # the user engages with them
            self.assertTrue(c.creator_id.startswith("cr-A"), c.creator_id)  # A-like
            self.assertEqual(c.name, NAMES[int(c.creator_id[-1])])
        # A new creator whose items point where the user's do comes first;
        # when their items are deleted they are gone again.
        new = ["Z%d" % i for i in range(3)]
        like = [(x + y) / 2 for x, y in zip(vec("A", 0), vec("A", 5))]  # the user's vector
        for i, item in enumerate(new):
            it = self.ev.CatalogItem(item_id=item, title="Trail stove %d" % i,
                                     creator_id="cr-Z", creator_name="Kai Berg",
                                     category="outdoor", price_cents=5000, in_stock=True,
                                     embedding=like)
            self.producer.produce("aisle.catalog", key=item, value=it.SerializeToString())
        self.producer.flush(5)

        def first_suggestion():
            r = self.rec(user_id=user, limit=1, filter=self.pb.Filter(exclude_item_ids=new))
            page = {it.creator_id for it in r.items}
            rest = [c for c in r.creators if c.creator_id not in page]
            return rest[0] if rest else None
        def first_is(creator):
            c = first_suggestion()
            return c is not None and c.creator_id == creator
        aisle_env.wait_for(lambda: first_is("cr-Z"), 10, "cr-Z to be suggested")
        self.assertEqual(first_suggestion().name, "Kai Berg")
        self.assertIn("3 items in the shop", first_suggestion().reasons)
        for item in new:
            self.producer.produce("aisle.catalog", key=item,
                                  value=self.ev.CatalogItem(item_id=item, deleted=True)
                                  .SerializeToString())
        self.producer.flush(5)
        aisle_env.wait_for(lambda: not first_is("cr-Z"), 10, "cr-Z to be gone")

    def test_trending_in_the_users_categories_and_for_a_new_user(self):
        for _ in range(3):  # shoppers make B030 and A020 trend in their categories
            self.user_with([("B030", 5), ("A020", 5)])
        user = self.user_with([("B001", 0)])  # a coffee shopper

        def trending(item):
            items = self.rec(user_id=user, limit=10, surface="home").items
            return next((it for it in items
                         if it.item_id == item and "trending" in it.sources), None)
        aisle_env.wait_for(lambda: trending("B030") is not None, 10, "B030 trending in coffee")
        self.assertIn("Trending in coffee this week", trending("B030").reasons)
        # The exact surface has no trending source.
        self.assertFalse(any("trending" in it.sources
                             for it in self.rec(user_id=user, limit=10).items))
        # A new user: the shop's trending categories, both of them on page one.
        r = self.rec(user_id="cold-" + uuid.uuid4().hex, limit=10, surface="home")
        self.assertEqual({it.category for it in r.items}, {"outdoor", "coffee"},
                         [it.item_id for it in r.items])
        reasons = [x for it in r.items if "trending" in it.sources for x in it.reasons]
        self.assertIn("Trending in outdoor this week", reasons)
        self.assertIn("Trending in coffee this week", reasons)

    def test_rules_pin_and_boost_on_their_surface(self):
        user = self.user_with([("A001", 0), ("A002", 0)])
        items = self.rec(user_id=user, limit=10, surface="promo").items
        self.assertEqual([it.item_id for it in items[:2]], ["B100", "A003"])
        for it in items[:2]:
            self.assertEqual(it.reasons[0], "Featured")
            self.assertIn("featured", it.sources)
        self.assertFalse(any("Featured" in it.reasons for it in items[2:]))
        self.assertGreaterEqual(items[1].score, items[2].score)
        # Filters hold: B100 left out, A003 keeps its place.
        items = self.rec(user_id=user, limit=10, surface="promo",
                         filter=self.pb.Filter(exclude_item_ids=["B100"])).items
        self.assertNotIn("B100", [it.item_id for it in items])
        self.assertEqual(items[1].item_id, "A003")
        # Other surfaces have no rules.
        self.assertNotIn("B100", [it.item_id for it in self.rec(user_id=user, limit=10).items])
        # An edit is read while serving: the fifth item, boosted, leads.
        plain = [it.item_id for it in self.rec(user_id=user, limit=10, surface="promo").items]
        fifth = plain[4]
        write(self.rules, RULES.replace("end", "boost %s 100\nend" % fifth))

        def first():
            return self.rec(user_id=user, limit=10, surface="promo").items[2]
        aisle_env.wait_for(lambda: first().item_id == fifth, 10, "the boost to be read")
        self.assertEqual(first().reasons[0], "Featured")
        # A broken edit is refused and the rules in use stay.
        write(self.rules, "aisle-rules 1\nsurface promo\npin B100 0\nend\n")
        time.sleep(1.5)
        self.assertEqual(self.rec(user_id=user, limit=10, surface="promo").items[0].item_id,
                         "B100")
        write(self.rules, RULES)
        # At start a file that does not check out stops serve, naming its line.
        bad = os.path.join(self.tmp, "bad.txt")
        write(bad, "aisle-rules 1\nsurface promo\nboost A001 -2\nend\n")
        r = subprocess.run([aisle_env.aisle_binary(), "serve", "--insecure", "--listen",
                            "127.0.0.1:0", "--http-listen", "127.0.0.1:0", "--kafka-brokers",
                            self.brokers, "--redis", self.redis_addr(), "--rules", bad],
                           capture_output=True, text=True, timeout=20)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn(bad + ":3: bad directive 'boost'", r.stderr)

    def test_creator_cap_never_exceeded(self):
        user = self.user_with([("A001", 0)])
        token = ""
        for _ in range(5):
            r = self.rec(user_id=user, limit=10, surface="cart", page_token=token)
            counts = {}
            for it in r.items:
                counts[it.creator_id] = counts.get(it.creator_id, 0) + 1
            self.assertLessEqual(max(counts.values()), 2, counts)
            token = r.next_page_token

    def test_ten_pages_never_repeat(self):
        user = self.user_with([("A001", 0), ("B001", 0)])
        for surface in ("", "home"):
            served, token = set(), ""
            for page in range(10):
                r = self.rec(user_id=user, limit=20, surface=surface, page_token=token)
                ids = [it.item_id for it in r.items]
                self.assertEqual(len(ids), 20, (surface, page))
                self.assertFalse(served & set(ids), (surface, page))
                served |= set(ids)
                token = r.next_page_token
                self.assertTrue(token)
        # A token is bound to its request and cannot be altered.
        self.fails(self.rec, grpc.StatusCode.INVALID_ARGUMENT, "another request",
                   user_id="someone-else", page_token=token, surface="home")
        forged = token[:10] + ("A" if token[10] != "A" else "B") + token[11:]
        self.fails(self.rec, grpc.StatusCode.INVALID_ARGUMENT, "does not verify",
                   user_id=user, page_token=forged, surface="home")

    def test_query_words_and_price(self):
        user = self.user_with([("B001", 0)])
        items = self.rec(user_id=user, limit=20, query="trail shoes",
                         filter=self.pb.Filter(max_price_cents=8000)).items
        self.assertTrue(items)
        for it in items:
            self.assertLessEqual(it.price_cents, 8000)
            self.assertIn("Trail shoe", it.title)
            self.assertIn("query", it.sources)
            self.assertTrue(any('Matches your search "trail shoes"' in r for r in it.reasons))

    def test_query_vector_overrides_profile_cluster(self):
        user = self.user_with([("A001", 0), ("A002", 0)])
        items = self.rec(user_id=user, limit=10, query_vector=vec("B", 3)).items
        self.assertTrue(all(it.item_id.startswith("B") for it in items),
                        [it.item_id for it in items])
        self.assertTrue(all("query_vector" in it.sources for it in items))
        # On home, MMR may add variety from A, but B leads and dominates.
        items = self.rec(user_id=user, limit=10, surface="home", query_vector=vec("B", 3)).items
        ids = [it.item_id for it in items]
        self.assertTrue(ids[0].startswith("B") and sum(i[0] == "B" for i in ids) >= 7, ids)

    def test_context_item_and_similar_items(self):
        r = self.rec(user_id="cold-" + uuid.uuid4().hex, limit=5, surface="product_page",
                     context_item_id="B020")
        self.assertTrue(all(it.item_id.startswith("B") and it.item_id != "B020"
                            for it in r.items))
        self.assertTrue(all("context" in it.sources for it in r.items))
        s = self.similar(item_id="A040", limit=8)
        self.assertEqual(len(s.items), 8)
        for it in s.items:
            self.assertTrue(it.item_id.startswith("A") and it.item_id != "A040")
            self.assertTrue(any('Like "Camping tent 40"' in x for x in it.reasons), it.reasons)
        page2 = self.similar(item_id="A040", limit=8, page_token=s.next_page_token)
        self.assertFalse({i.item_id for i in s.items} & {i.item_id for i in page2.items})

    def test_zz_redis_down_degrades_then_recovers(self):
        user = self.user_with([("A001", 0), ("A002", 0)])
        self.assertIn("profile", self.rec(user_id=user, limit=5, surface="home").items[0].sources)
        self.procs.stop(self.redis_p)
        r = self.rec(user_id=user, limit=10, surface="home")
        self.assertTrue(r.degraded)
        self.assertIn("unreachable", r.degraded_reason)
        self.assertEqual(len(r.items), 10)
        for it in r.items:
            self.assertNotIn("profile", it.sources)
        # Redis back (empty: it kept nothing): a new signal personalizes again.
        self.redis_p = self.start_redis()
        user2 = self.user_with([("B001", 0), ("B002", 0)])
        deadline = time.time() + 10
        while True:
            r = self.rec(user_id=user2, limit=5, surface="home")
            if not r.degraded or time.time() > deadline:
                break
            time.sleep(0.05)
        self.assertFalse(r.degraded, r.degraded_reason)
        self.assertIn("profile", r.items[0].sources)


if __name__ == "__main__":
    unittest.main(verbosity=2)
