#!/usr/bin/python3
"""The learning loop live (see run.sh): `aisle synth` shoppers whose true
tastes are known answer the pages a real `aisle serve` gives them; the
exposures and their clicks, carts and purchases flow through Kafka (ingest
keeps the profiles current); `aisle rank train` learns a ranker from them;
an experiment on the Admin service puts it on half the users; more
simulated traffic; `aisle report` reads the lift with its interval.

A shopper's chance to click an item at position k of a page is
(1 / (1 + k/4)) x (0.02 + 0.25 in their first category + 0.12 in their
second + 0.35 by their favourite creator), a third of that above their
budget; a click becomes a cart with chance 0.3 (within budget), a cart a
purchase with chance 0.3. The hand weights barely use the creator, so a
ranker that learns what these shoppers do has something to find."""

import argparse
import importlib
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid

import grpc
from confluent_kafka import Producer

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "integration"))
import aisle_env  # noqa: E402


def loadavg():
    return " ".join(open("/proc/loadavg").read().split()[:3])


class Shoppers:
    """The simulated shoppers: their tastes, and what they do with a page."""

    def __init__(self, path, ev, producer):
        self.taste = {}
        for line in open(path):
            u, c1, c2, creator, budget = line.split()
            self.taste[u] = (c1, c2, creator, int(budget))
        self.ev, self.producer = ev, producer
        self.lock = threading.Lock()
        self.clicks = {}  # variant -> [pages, clicks]

    def answer(self, user, items, variant, rng):
        c1, c2, creator, budget = self.taste[user]
        now, clicks = int(time.time() * 1000), 0
        for k, it in enumerate(items):
            p = (0.02 + 0.25 * (it.category == c1) + 0.12 * (it.category == c2) +
                 0.35 * (it.creator_id == creator)) / (1 + k / 4)
            if it.price_cents > budget:
                p /= 3
            if rng.random() >= p:
                continue
            clicks += 1
            kinds = [self.ev.CLICK]
            if it.price_cents <= budget and rng.random() < 0.3:
                kinds.append(self.ev.ADD_TO_CART)
                if rng.random() < 0.3:
                    kinds.append(self.ev.PURCHASE)
            for i, kind in enumerate(kinds):
                s = self.ev.Signal(event_id=uuid.uuid4().hex, user_id=user, kind=kind,
                                   item_id=it.item_id, creator_id=it.creator_id,
                                   ts_ms=now + 1 + i)
                self.producer.produce("aisle.signals", key=user, value=s.SerializeToString())
        with self.lock:
            st = self.clicks.setdefault(variant, [0, 0])
            st[0] += 1
            st[1] += clicks


def traffic(addr, pb, shoppers, users, pages, threads, seed):
    """pages Recommend calls (surface home), users in turn, on threads."""
    def run(t):
        ch = grpc.insecure_channel(addr)
        rec = ch.unary_unary("/aisle.v1.Recommender/Recommend",
                             request_serializer=lambda m: m.SerializeToString(),
                             response_deserializer=pb.RecommendResponse.FromString)
        rng = random.Random(seed * 100 + t)
        for i in range(t, pages, threads):
            user = users[i % len(users)]
            r = rec(pb.RecommendRequest(user_id=user, limit=10, surface="home"), timeout=10)
            variant = ",".join(a.variant for a in r.assignments) or "none"
            shoppers.answer(user, r.items, variant, rng)
        ch.close()
    ts = [threading.Thread(target=run, args=(t,)) for t in range(threads)]
    start = time.time()
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    shoppers.producer.flush(30)
    return time.time() - start


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--items", type=int, default=5000)
    # Few pages a user in the experiment: the report's rates are users who
    # clicked (the randomization unit), which many pages each would saturate.
    ap.add_argument("--users", type=int, default=4000)
    ap.add_argument("--train-pages", type=int, default=12000)
    ap.add_argument("--test-pages", type=int, default=4000)
    ap.add_argument("--threads", type=int, default=4)
    a = ap.parse_args()
    pb, ev = aisle_env.protos()
    xp = importlib.import_module("aisle.v1.experiments_pb2")
    procs = aisle_env.Procs()
    d = tempfile.mkdtemp(prefix="aisle-loop-")
    try:
        _, redis = procs.redis()
        _, brokers = procs.kafka(partitions=8)
        tastes = os.path.join(d, "tastes")
        subprocess.run([aisle_env.aisle_binary(), "synth", "--kafka-brokers", brokers,
                        "--items", str(a.items), "--users", str(a.users),
                        "--signals-per-user", "20", "--tastes", tastes], check=True,
                       stdout=subprocess.DEVNULL)
        serve, addr = procs.serve(brokers, redis, None, ["--log-level", "warn"])
        procs.ingest(brokers, redis, ["--log-level", "warn"])
        ch = grpc.insecure_channel(addr)
        aisle_env.wait_for(lambda: aisle_env.healthy(ch), 600, "the catalog to load", 0.2)
        users = ["u%05d" % i for i in range(a.users)]
        aisle_env.wait_profile(ch, users[-1])
        # Quiet: the mock cluster stops before this producer is collected.
        shoppers = Shoppers(tastes, ev, Producer({"bootstrap.servers": brokers,
                                                  "linger.ms": 5, "log_level": 0}))

        def logged():
            body = urllib.request.urlopen("http://%s/metrics" % serve.http).read().decode()
            get = {l.split()[0]: float(l.split()[1]) for l in body.splitlines()
                   if l.startswith("aisle_exposures_total")}
            return get['aisle_exposures_total{outcome="queued"}'], \
                get['aisle_exposures_total{outcome="delivered"}']

        print("== load average %s" % loadavg())
        secs = traffic(addr, pb, shoppers, users, a.train_pages, a.threads, 1)
        print("1. the hand weights served %d pages in %.1f s; shoppers clicked %.3f a page" %
              (a.train_pages, secs, shoppers.clicks["none"][1] / shoppers.clicks["none"][0]))
        aisle_env.wait_for(lambda: logged()[0] == logged()[1], 60, "exposures on Kafka", 0.2)
        time.sleep(2)  # the last signals through ingest
        model = os.path.join(d, "ltr.model")
        out = subprocess.run([aisle_env.aisle_binary(), "rank", "train", "--kafka-brokers",
                              brokers, "--out", model, "--holdout-s", str(max(2, int(secs / 4)))],
                             check=True, capture_output=True, text=True).stdout
        print("2. aisle rank train (the last quarter of the pages held out):")
        print("   " + out.strip().replace("\n", "\n   "))
        admin = ch.unary_unary("/aisle.v1.Admin/SetExperiment",
                               request_serializer=lambda m: m.SerializeToString(),
                               response_deserializer=xp.ExperimentSet.FromString)
        exp = xp.Experiment(name="ltr", layer="ranker", salt="loop-1", share_bp=10000, variants=[
            xp.Variant(name="control", overrides=[
                xp.ParamOverride(param="ranker.model_file", value="none")]),
            xp.Variant(name="learned", overrides=[
                xp.ParamOverride(param="ranker.model_file", value=model)])])
        admin(xp.SetExperimentRequest(experiment=exp), timeout=5)
        time.sleep(1)
        print("3. experiment ltr on the Admin service: control (hand weights) and learned, "
              "half the users each")
        secs = traffic(addr, pb, shoppers, users, a.test_pages, a.threads, 2)
        print("4. %d more pages in %.1f s; clicks a page (the simulator's own count): %s" %
              (a.test_pages, secs, ", ".join("%s %.3f" % (v, c / n) for v, (n, c) in
                                             sorted(shoppers.clicks.items()) if v != "none")))
        aisle_env.wait_for(lambda: logged()[0] == logged()[1], 60, "exposures on Kafka", 0.2)
        time.sleep(2)
        out = subprocess.run([aisle_env.aisle_binary(), "report", "--kafka-brokers", brokers],
                             check=True, capture_output=True, text=True).stdout
        print("5. aisle report:")
        print("   " + out.strip().replace("\n", "\n   "))
        print("== load average %s" % loadavg())
    finally:
        procs.close()


if __name__ == "__main__":
    main()
