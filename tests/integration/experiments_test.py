#!/usr/bin/python3
"""A/B experiments through running servers: an experiment set with the
Admin service on one replica reaches a second replica within a second;
Recommend and Shop name the user's variants and a variant's parameters
change the page; every served page and Shop answer is on aisle.exposures
with its request id; a full exposure queue drops pages without holding a
call, and /metrics counts the drops; an invalid definition is refused with
the reason and the running set stays. The learned ranker (`aisle rank
train`'s model file) is served: a changed file changes the order, a
corrupt one keeps the model in use, and a variant's ranker.model_file
against the hand weights changes one user's page."""

import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.request
import uuid

import grpc
from confluent_kafka import Consumer, Producer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import aisle_env  # noqa: E402

DIM = 4


class Experiments(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.pb, cls.ev = aisle_env.protos()
        import importlib
        cls.xp = importlib.import_module("aisle.v1.experiments_pb2")
        cls.procs = aisle_env.Procs()
        try:
            _, cls.redis = cls.procs.redis()
            # Fault commands on its stdin (a broker going down) for the drop test.
            cls.kafka, boot = cls.procs.start("kafka", [aisle_env.aisle_binary(), "kafka-mock",
                                                        "--partitions", "4"],
                                              "bootstrap=", stdin=subprocess.PIPE)
            cls.brokers = boot
            prod = Producer({"bootstrap.servers": cls.brokers})
            for i in range(40):
                v = [0.0] * DIM
                v[i % 2] = 1.0
                v[2] = 0.01 * i
                it = cls.ev.CatalogItem(item_id="i%02d" % i, title="Item %d" % i,
                                        creator_id="c%d" % (i % 4), category="cat%d" % (i % 2),
                                        price_cents=100 + i, in_stock=True, embedding=v)
                prod.produce("aisle.catalog", key=it.item_id, value=it.SerializeToString())
            # A shopper of the even items: their personal score is high, the
            # odd items' near 0 (the learned-ranker test orders by it).
            for i, item in enumerate(("i00", "i02", "i04")):
                s = cls.ev.Signal(event_id=uuid.uuid4().hex, user_id="learner", kind=cls.ev.VIEW,
                                  item_id=item, ts_ms=int(time.time() * 1000) - 1000 + i)
                prod.produce("aisle.signals", key=s.user_id, value=s.SerializeToString())
            prod.flush(10)
            cls.procs.ingest(cls.brokers, cls.redis)
            cls.serves = []
            for _ in range(2):
                _, addr = cls.procs.serve(cls.brokers, cls.redis, DIM)
                ch = grpc.insecure_channel(addr)
                aisle_env.wait_for(lambda: aisle_env.healthy(ch), 30, "serve to be SERVING")
                cls.serves.append(ch)
        except Exception:
            cls.procs.close()
            raise

    @classmethod
    def tearDownClass(cls):
        for ch in cls.serves:
            ch.close()
        cls.procs.close_checked()

    def admin(self, ch, method, req, resp):
        return ch.unary_unary("/aisle.v1.Admin/" + method, request_serializer=req.SerializeToString,
                              response_deserializer=resp.FromString)(req, timeout=5)

    def recommend(self, ch, user, surface="home"):
        f = ch.unary_unary("/aisle.v1.Recommender/Recommend",
                           request_serializer=self.pb.RecommendRequest.SerializeToString,
                           response_deserializer=self.pb.RecommendResponse.FromString)
        return f(self.pb.RecommendRequest(user_id=user, limit=8, surface=surface), timeout=5)

    def mock(self, command):
        """A fault command to `aisle kafka-mock` (on its stdin), once it is done."""
        self.kafka.stdin.write((command + "\n").encode())
        self.kafka.stdin.flush()
        self.assertEqual(self.kafka.stdout.readline().decode().strip(), "ok")

    def set_caps(self):
        """Puts every user in the caps experiment's one variant."""
        xp = self.xp
        exp = xp.Experiment(name="caps", layer="rank", salt="caps-1", share_bp=10000,
                            variants=[xp.Variant(name="one_per_creator", weight=1, overrides=[
                                xp.ParamOverride(param="rank.creator_cap", value="1")])])
        return self.admin(self.serves[0], "SetExperiment", xp.SetExperimentRequest(experiment=exp),
                          xp.ExperimentSet)

    def exposure(self, request_id):
        """The exposure logged for request_id, or None after 20 s."""
        c = Consumer({"bootstrap.servers": self.brokers, "group.id": uuid.uuid4().hex,
                      "auto.offset.reset": "earliest"})
        c.subscribe(["aisle.exposures"])
        found = None
        deadline = time.time() + 20
        while time.time() < deadline and not found:
            m = c.poll(0.5)
            if m is None or m.error():
                continue
            e = self.xp.Exposure.FromString(m.value())
            if e.request_id == request_id:
                found = e
        c.close()
        return found

    def test_experiment_reaches_both_replicas_and_the_page(self):
        xp = self.xp
        t0 = time.time()
        stored = self.set_caps()
        self.assertEqual(stored.experiments[0].name, "caps")

        def assigned():
            a = self.admin(self.serves[1], "GetAssignment", xp.GetAssignmentRequest(user_id="u1"),
                           xp.Assignment)
            return [v.variant for v in a.variants] == ["one_per_creator"]
        aisle_env.wait_for(assigned, 10, "the other replica to apply the experiment")
        print("the change reached the other replica in %.2f s" % (time.time() - t0))

        r = self.recommend(self.serves[1], "u1")
        self.assertEqual([(a.layer, a.experiment, a.variant) for a in r.assignments],
                         [("rank", "caps", "one_per_creator")])
        # The variant's parameter is in effect: one item per creator.
        creators = [i.creator_id for i in r.items[:4]]
        self.assertEqual(len(creators), len(set(creators)), creators)

        # The page is on the exposure log with its request id.
        found = self.exposure(r.request_id)
        self.assertIsNotNone(found, "no exposure for request %s" % r.request_id)
        self.assertEqual(found.user_id, "u1")
        self.assertEqual([i.item_id for i in found.items], [i.item_id for i in r.items])
        self.assertEqual(found.variants[0].variant, "one_per_creator")

    def test_shop_names_the_variants_and_is_logged(self):
        xp = self.xp
        self.set_caps()

        def assigned():
            a = self.admin(self.serves[0], "GetAssignment",
                           xp.GetAssignmentRequest(user_id="shopper"), xp.Assignment)
            return [v.variant for v in a.variants] == ["one_per_creator"]
        aisle_env.wait_for(assigned, 5, "the replica to apply the experiment")
        shop = self.serves[0].unary_stream(
            "/aisle.v1.Recommender/Shop", request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=self.pb.ShopChunk.FromString)
        for mode, name in ((self.pb.SHOP_MODE_FAST, "fast"),
                           (self.pb.SHOP_MODE_CONTEMPLATING, "contemplating")):
            chunks = list(shop(self.pb.ShopRequest(user_id="shopper", query="something nice",
                                                   limit=4, mode=mode), timeout=20))
            first = chunks[0]
            self.assertTrue(first.items, "the first chunk carries the products")
            self.assertEqual([(a.layer, a.experiment, a.variant) for a in first.assignments],
                             [("rank", "caps", "one_per_creator")])
            self.assertFalse(any(c.assignments for c in chunks[1:]), "named once, first")
            e = self.exposure(first.request_id)
            self.assertIsNotNone(e, "no exposure for Shop request %s" % first.request_id)
            self.assertEqual((e.surface, e.mode, e.user_id), ("shop", name, "shopper"))
            self.assertEqual([i.item_id for i in e.items], [i.item_id for i in first.items])
            self.assertEqual([i.position for i in e.items], list(range(len(first.items))))
            self.assertEqual(e.variants[0].variant, "one_per_creator")

    def test_shop_mode_variant_is_applied(self):
        xp = self.xp
        exp = xp.Experiment(name="deep", layer="shop", salt="deep-1", share_bp=10000,
                            variants=[xp.Variant(name="think", weight=1, overrides=[
                                xp.ParamOverride(param="shop.mode", value="contemplating")])])
        self.admin(self.serves[0], "SetExperiment", xp.SetExperimentRequest(experiment=exp),
                   xp.ExperimentSet)
        try:
            def assigned():
                a = self.admin(self.serves[0], "GetAssignment",
                               xp.GetAssignmentRequest(user_id="thinker"), xp.Assignment)
                return "think" in [v.variant for v in a.variants]
            aisle_env.wait_for(assigned, 5, "the replica to apply the experiment")
            shop = self.serves[0].unary_stream(
                "/aisle.v1.Recommender/Shop", request_serializer=lambda m: m.SerializeToString(),
                response_deserializer=self.pb.ShopChunk.FromString)
            first = list(shop(self.pb.ShopRequest(user_id="thinker", query="something nice",
                                                  limit=4, mode=self.pb.SHOP_MODE_FAST),
                              timeout=20))[0]
            # Asked for fast; the variant's mode is what was served and logged.
            self.assertTrue(first.agents, "contemplating mode's sub-agents")
            self.assertEqual(self.exposure(first.request_id).mode, "contemplating")
        finally:
            self.admin(self.serves[0], "DeleteExperiment", xp.DeleteExperimentRequest(name="deep"),
                       xp.ExperimentSet)

    def test_scorer_file_variant_is_applied(self):
        xp = self.xp
        d = tempfile.mkdtemp(prefix="aisle-scorer-")
        path = os.path.join(d, "popular.txt")
        with open(path, "w") as f:  # home ranked by popularity alone, no MMR
            f.write("aisle-scorer 1\nsurface home\nweight profile 0\nweight neighbours 0\n"
                    "weight creators 0\nweight trending 0\nweight popular 100\n"
                    "affinity category 0\naffinity brand 0\nmmr 1\nend\n")

        def page(variant):
            exp = xp.Experiment(name="weights", layer="scoring", share_bp=10000, variants=[
                xp.Variant(name="served", overrides=[]),
                xp.Variant(name="file", overrides=[
                    xp.ParamOverride(param="ranker.weights_file", value=path)])],
                allowlist=[xp.AllowEntry(user_id="learner", variant=variant)])
            self.admin(self.serves[0], "SetExperiment", xp.SetExperimentRequest(experiment=exp),
                       xp.ExperimentSet)
            aisle_env.wait_for(lambda: variant in [a.variant for a in self.recommend(
                self.serves[0], "learner").assignments], 5, "variant " + variant)
            return [i.item_id for i in self.recommend(self.serves[0], "learner").items]
        try:
            served, by_file = page("served"), page("file")
            self.assertNotEqual(served, by_file, "the variant's scorer file changes the page")
            self.assertEqual(page("served"), served, "and the other variant keeps serve's")
        finally:
            self.admin(self.serves[0], "DeleteExperiment",
                       xp.DeleteExperimentRequest(name="weights"), xp.ExperimentSet)
            shutil.rmtree(d)

    def test_exposure_drops_are_counted(self):
        # Room for two pages, and librdkafka's own queue holds one: with the
        # broker away the producer thread waits on that one, the two slots
        # fill, and every later page is dropped while the calls go on. The
        # thread takes the whole queue at each wake-up, so it can hold two
        # pages in hand (when two came in before it ran), not just one.
        p, http = self.procs.start(
            "serve", [aisle_env.aisle_binary(), "serve", "--insecure", "--listen", "127.0.0.1:0",
                      "--http-listen", "127.0.0.1:0", "--kafka-brokers", self.brokers,
                      "--redis", self.redis, "--dim", str(DIM), "--exposure-queue", "2",
                      "--kafka-opt", "queue.buffering.max.messages=1"],
            "aisle serve: http on port ")
        addr = "127.0.0.1:" + p.stdout.readline().decode().rsplit(" ", 1)[1].strip()
        ch = grpc.insecure_channel(addr)
        try:
            aisle_env.wait_for(lambda: aisle_env.healthy(ch), 30, "serve to be SERVING")

            def exposures(outcome):
                with urllib.request.urlopen("http://127.0.0.1:%s/metrics" % http,
                                            timeout=5) as r:
                    body = r.read().decode()
                line = 'aisle_exposures_total{outcome="%s"} ' % outcome
                return float(next(l for l in body.splitlines() if l.startswith(line))
                             .split()[-1])
            self.assertEqual(exposures("dropped"), 0)
            self.mock("down 1")
            try:
                for i in range(20):
                    r = self.recommend(ch, "dropper%d" % i)
                    self.assertTrue(r.items, "a call goes on while its page is dropped")
                # One page in librdkafka, up to two in the thread's hands, two queued.
                self.assertGreaterEqual(exposures("dropped"), 20 - 5)
            finally:
                self.mock("up 1")
        finally:
            ch.close()
            self.assertEqual(self.procs.stop(p), 0, self.procs.log(p))

    def test_learned_ranker_is_served(self):
        xp = self.xp
        d = tempfile.mkdtemp(prefix="aisle-ltr-")
        up, down = aisle_env.train_ranker(d, "up", 1), aisle_env.train_ranker(d, "down", -1)
        served = os.path.join(d, "served.model")

        def put(src=None, data=None):  # as a deploy would: a new file renamed over
            tmp = served + ".tmp"
            if src:
                shutil.copyfile(src, tmp)
            else:
                with open(tmp, "wb") as f:
                    f.write(data)
            os.replace(tmp, served)
        put(up)
        try:
            self.admin(self.serves[0], "DeleteExperiment", xp.DeleteExperimentRequest(name="caps"),
                       xp.ExperimentSet)
        except grpc.RpcError:
            pass  # not set yet
        _, addr = self.procs.serve(self.brokers, self.redis, DIM, ["--ranker-model", served])
        ch = grpc.insecure_channel(addr)
        try:
            aisle_env.wait_for(lambda: aisle_env.healthy(ch), 30, "serve to be SERVING")

            def page():
                return [i.item_id for i in self.recommend(ch, "learner", surface="").items]
            def even(items):
                return all(int(i[1:]) % 2 == 0 for i in items[:4])
            aisle_env.wait_for(lambda: even(page()), 20,
                               "the learner's profile to lead to the even items")
            by_up = page()

            put(down)  # a changed file: reloaded within about a second
            aisle_env.wait_for(lambda: page() != by_up, 5, "the new model to change the order")
            by_down = page()
            self.assertFalse(any(int(i[1:]) % 2 == 0 for i in by_down[:4]), by_down)

            with open(down, "rb") as f:
                good = f.read()
            put(data=good[:len(good) // 2])  # a corrupt file: refused, the model in use stays
            deadline = time.time() + 2.5
            while time.time() < deadline:
                self.assertEqual(page(), by_down)
                time.sleep(0.1)

            # One user, two variants: the hand weights against the learned model.
            def variant(name):
                exp = xp.Experiment(name="ltr", layer="ranker", share_bp=10000, variants=[
                    xp.Variant(name="hand", overrides=[
                        xp.ParamOverride(param="ranker.model_file", value="none")]),
                    xp.Variant(name="learned", overrides=[
                        xp.ParamOverride(param="ranker.model_file", value=down)])],
                    allowlist=[xp.AllowEntry(user_id="learner", variant=name)])
                self.admin(ch, "SetExperiment", xp.SetExperimentRequest(experiment=exp),
                           xp.ExperimentSet)
                aisle_env.wait_for(lambda: [a.variant for a in self.recommend(
                    ch, "learner", surface="").assignments] == [name], 5, "variant " + name)
                r = self.recommend(ch, "learner", surface="")
                return r, [i.item_id for i in r.items]
            _, by_hand = variant("hand")
            r, by_learned = variant("learned")
            self.assertNotEqual(by_hand, by_learned)
            self.assertEqual(by_learned, by_down)
            self.assertTrue(even(by_hand), by_hand)
            # What was scored is logged with each item, for the next training.
            e = self.exposure(r.request_id)
            self.assertIsNotNone(e)
            self.assertEqual({len(i.features) for i in e.items}, {aisle_env.RANKER_FEATURES})
        finally:
            ch.close()
            try:
                self.admin(self.serves[0], "DeleteExperiment",
                           xp.DeleteExperimentRequest(name="ltr"), xp.ExperimentSet)
            except grpc.RpcError:
                pass
            shutil.rmtree(d)

    def test_invalid_definition_is_refused(self):
        xp = self.xp
        bad = xp.Experiment(name="bad", layer="rank", share_bp=10000, variants=[
            xp.Variant(name="v", overrides=[xp.ParamOverride(param="rank.nope", value="1")])])
        with self.assertRaises(grpc.RpcError) as cm:
            self.admin(self.serves[0], "SetExperiment", xp.SetExperimentRequest(experiment=bad),
                       xp.ExperimentSet)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
        self.assertIn("rank.nope", cm.exception.details())


if __name__ == "__main__":
    unittest.main(verbosity=2)
