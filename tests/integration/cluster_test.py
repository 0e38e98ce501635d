#!/usr/bin/python3
"""aisle ingest and aisle serve on a local three-master Redis Cluster (real
redis-server processes with cluster mode on loopback ports): profiles are
spread over the masters, each user's keys in one slot, and they equal the
reference computed from the produced signals. Then one user's slot is
migrated from its master to another while signals keep coming: during the
migration the old master answers ASK (the importing master sees ASKING),
after it MOVED; nothing is lost or counted twice."""

import os
import subprocess
import sys
import tempfile
import time
import unittest

from confluent_kafka import Producer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import aisle_env  # noqa: E402
import ingest_support as sup  # noqa: E402

ITEMS = ["item-%d" % i for i in range(20)]
USERS = ["cl-user-%d" % i for i in range(40)]


class ClusterTest(unittest.TestCase):
    def setUp(self):
        self.pb, self.ev = aisle_env.protos()
        self.procs = aisle_env.Procs()
        self.dir = tempfile.mkdtemp(prefix="aisle-cluster-")
        try:
            self.ports = sup.start_cluster(self)
            _, self.brokers = self.procs.kafka()
            self.producer = Producer({"bootstrap.servers": self.brokers, "linger.ms": 5})
            seed = "127.0.0.1:%d" % self.ports[0]
            sup.start_shop(self, seed, ITEMS, 4)
            self.procs.ingest(self.brokers, seed, ["--half-life-s", sup.HALF_LIFE])
        except Exception:
            self.procs.close()
            raise

    def tearDown(self):
        sup.finish(self)

    def produce(self, ref, signals):
        for s in signals:
            ref.add(s)
            self.producer.produce("aisle.signals", key=s.user_id, value=s.SerializeToString())
        self.producer.flush(10)

    def wait_equal(self, ref, what):
        deadline = time.time() + 30
        while True:
            bad = self.reader.mismatches(ref)
            if not bad:
                return
            if time.time() > deadline:
                self.fail("%s: %d users differ, e.g. %s" % (what, len(bad), bad[:3]))
            time.sleep(0.2)

    def owner(self, slot):
        """(port, node id) of the master serving slot."""
        for p in self.ports:
            for line in sup.redis_cli(p, "CLUSTER", "NODES"):
                f = line.split()
                if "myself" in f[2] and "master" in f[2]:
                    for r in f[8:]:
                        lo, _, hi = r.partition("-")
                        if not r.startswith("[") and int(lo) <= slot <= int(hi or lo):
                            return p, f[0]
        raise AssertionError("no master serves slot %d" % slot)

    def errorstat(self, port, name):
        for line in sup.redis_cli(port, "INFO", "errorstats"):
            if line.startswith("errorstat_%s:count=" % name):
                return int(line.split("=")[1])
        return 0

    def test_profiles_spread_and_survive_slot_migration(self):
        ref = sup.Reference()
        self.produce(ref, sup.make_signals(self.ev, 600, USERS, ITEMS, seed=1))
        self.wait_equal(ref, "before migration")
        # Every master holds some users' keys.
        for p in self.ports:
            self.assertGreater(int(sup.redis_cli(p, "DBSIZE")[0]), 0, "master %d is empty" % p)
        # Categories and brands were learned from the catalog topic.
        user = USERS[0]
        fields = list(sup.profile_fields(self.ports[0], user, cluster=True))
        cats = [f[2:] for f in fields if f.startswith("g:")]
        self.assertTrue(cats and all(c.startswith("cat-") for c in cats), fields)

        slot = int(sup.redis_cli(self.ports[0], "CLUSTER", "KEYSLOT", "{%s}" % user)[0])
        src, src_id = self.owner(slot)
        dst = next(p for p in self.ports if p != src)
        dst_id = sup.redis_cli(dst, "CLUSTER", "MYID")[0]
        sup.redis_cli(dst, "CLUSTER", "SETSLOT", slot, "IMPORTING", src_id)
        sup.redis_cli(src, "CLUSTER", "SETSLOT", slot, "MIGRATING", dst_id)
        keys = sup.redis_cli(src, "CLUSTER", "GETKEYSINSLOT", slot, 1000)
        self.assertGreaterEqual(len(keys), 2)  # the user's profile hash and event ids
        sup.redis_cli(src, "MIGRATE", "127.0.0.1", dst, "", 0, 5000, "KEYS", *keys)
        ask_before = self.errorstat(src, "ASK")

        # Mid-migration: the old master sends the user's commands on (ASK).
        self.produce(ref, sup.make_signals(self.ev, 40, [user], ITEMS, seed=2))
        self.wait_equal(ref, "during migration")
        self.assertGreater(self.errorstat(src, "ASK"), ask_before, "no ASK was followed")

        for p in self.ports:
            sup.redis_cli(p, "CLUSTER", "SETSLOT", slot, "NODE", dst_id)
        moved_before = self.errorstat(src, "MOVED")
        self.produce(ref, sup.make_signals(self.ev, 200, USERS, ITEMS, seed=3))
        self.wait_equal(ref, "after migration")
        self.assertGreater(self.errorstat(src, "MOVED"), moved_before, "no MOVED was followed")
        self.assertEqual(int(sup.redis_cli(src, "CLUSTER", "COUNTKEYSINSLOT", slot)[0]), 0)


if __name__ == "__main__":
    unittest.main(verbosity=2)
