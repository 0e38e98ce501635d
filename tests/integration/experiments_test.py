#!/usr/bin/python3
"""A/B experiments through running servers: an experiment set with the
Admin service on one replica reaches a second replica within a second;
Recommend names the user's variants and a variant's parameters change the
page; every served page is on aisle.exposures with its request id; an
invalid definition is refused with the reason and the running set stays."""

import os
import sys
import time
import unittest
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
            _, cls.brokers = cls.procs.kafka()
            prod = Producer({"bootstrap.servers": cls.brokers})
            for i in range(40):
                v = [0.0] * DIM
                v[i % 2] = 1.0
                v[2] = 0.01 * i
                it = cls.ev.CatalogItem(item_id="i%02d" % i, title="Item %d" % i,
                                        creator_id="c%d" % (i % 4), category="cat%d" % (i % 2),
                                        price_cents=100 + i, in_stock=True, embedding=v)
                prod.produce("aisle.catalog", key=it.item_id, value=it.SerializeToString())
            prod.flush(10)
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
        unclean = cls.procs.close()
        if unclean:
            raise AssertionError("processes did not stop cleanly:\n" + "\n".join(unclean))

    def admin(self, ch, method, req, resp):
        return ch.unary_unary("/aisle.v1.Admin/" + method, request_serializer=req.SerializeToString,
                              response_deserializer=resp.FromString)(req, timeout=5)

    def recommend(self, ch, user, surface="home"):
        f = ch.unary_unary("/aisle.v1.Recommender/Recommend",
                           request_serializer=self.pb.RecommendRequest.SerializeToString,
                           response_deserializer=self.pb.RecommendResponse.FromString)
        return f(self.pb.RecommendRequest(user_id=user, limit=8, surface=surface), timeout=5)

    def test_experiment_reaches_both_replicas_and_the_page(self):
        xp = self.xp
        exp = xp.Experiment(name="caps", layer="rank", salt="caps-1", share_bp=10000,
                            variants=[xp.Variant(name="one_per_creator", weight=1, overrides=[
                                xp.ParamOverride(param="rank.creator_cap", value="1")])])
        t0 = time.time()
        stored = self.admin(self.serves[0], "SetExperiment", xp.SetExperimentRequest(experiment=exp),
                            xp.ExperimentSet)
        self.assertEqual(stored.experiments[0].name, "caps")

        def assigned():
            a = self.admin(self.serves[1], "GetAssignment", xp.GetAssignmentRequest(user_id="u1"),
                           xp.Assignment)
            return [v.variant for v in a.variants] == ["one_per_creator"]
        aisle_env.wait_for(assigned, 5, "the other replica to apply the experiment")
        self.assertLess(time.time() - t0, 1.5, "a change reaches every replica within a second")

        r = self.recommend(self.serves[1], "u1")
        self.assertEqual([(a.layer, a.experiment, a.variant) for a in r.assignments],
                         [("rank", "caps", "one_per_creator")])
        # The variant's parameter is in effect: one item per creator.
        creators = [i.creator_id for i in r.items[:4]]
        self.assertEqual(len(creators), len(set(creators)), creators)

        # The page is on the exposure log with its request id.
        c = Consumer({"bootstrap.servers": self.brokers, "group.id": uuid.uuid4().hex,
                      "auto.offset.reset": "earliest"})
        c.subscribe(["aisle.exposures"])
        found = None
        deadline = time.time() + 20
        while time.time() < deadline and not found:
            m = c.poll(0.5)
            if m is None or m.error():
                continue
            e = xp.Exposure.FromString(m.value())
            if e.request_id == r.request_id:
                found = e
        c.close()
        self.assertIsNotNone(found, "no exposure for request %s" % r.request_id)
        self.assertEqual(found.user_id, "u1")
        self.assertEqual([i.item_id for i in found.items], [i.item_id for i in r.items])
        self.assertEqual(found.variants[0].variant, "one_per_creator")

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
