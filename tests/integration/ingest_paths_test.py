#!/usr/bin/python3
"""aisle ingest on the paths where a review found signals lost, ingestion
stalled or an erasure undone (issue 13), each reproduced on real parts
(redis-server, `aisle kafka-mock`, aisle serve and ingest):

1. a dead letter the producer refuses at once (larger than its
   message.max.bytes) must not cost the batch's valid signals;
2. partitions assigned by a rebalance while the worker waits for Redis must
   stay paused: nothing consumed there is dropped and committed past;
3. a dead letter whose delivery fails must be sent again before the source
   offsets are committed;
4. user ids holding braces must keep every key of the user in one Redis
   Cluster slot, and DeleteProfile must work for them;
5. an erasure must survive a replay of the log by a new consumer group,
   while signals produced after it build a new profile;
6. catalog categories and brands longer than serve accepts must not reach
   profiles;
7. a user whose profile key no write can read (a corrupt record) must have
   its events dead-lettered with the key and the check in the reason, while
   every other user's events apply and the partitions move on."""

import os
import subprocess
import sys
import tempfile
import time
import unittest
import uuid

import grpc
from confluent_kafka import Producer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import aisle_env  # noqa: E402
import ingest_support as sup  # noqa: E402

ITEMS = ["item-%d" % i for i in range(12)]
COMMON = ["--half-life-s", sup.HALF_LIFE]


class IngestPathsTest(unittest.TestCase):
    cluster = False

    def setUp(self):
        self.pb, self.ev = aisle_env.protos()
        self.procs = aisle_env.Procs()
        self.dir = tempfile.mkdtemp(prefix="aisle-paths-")
        try:
            if self.cluster:
                self.ports = sup.start_cluster(self)
                self.redis_addr = "127.0.0.1:%d" % self.ports[0]
            else:
                self.redis_port = aisle_env.free_port()
                self.redis_addr = "127.0.0.1:%d" % self.redis_port
                self.redis = sup.start_persistent_redis(self, self.redis_port)
            self.kafka, self.brokers = self.procs.start("kafka", [
                aisle_env.aisle_binary(), "kafka-mock", "--partitions", "4"],
                "bootstrap=", stdin=subprocess.PIPE)
            self.producer = Producer({"bootstrap.servers": self.brokers, "linger.ms": 5,
                                      "message.max.bytes": 4000000})
            self.catalog()
            sup.start_shop(self, self.redis_addr, ITEMS, 2)
        except Exception:
            self.procs.close()
            raise

    def tearDown(self):
        sup.finish(self)

    def catalog(self):
        """Extra catalog items a test needs before serve and ingest start."""

    def mock(self, command):
        self.kafka.stdin.write((command + "\n").encode())
        self.kafka.stdin.flush()
        self.assertEqual(self.kafka.stdout.readline().decode().strip(), "ok", command)

    def worker(self, extra=(), name="ingest"):
        """An aisle ingest; name names its log."""
        p, _ = self.procs.start(name, [aisle_env.aisle_binary(), "ingest", "--http-listen",
                                       "127.0.0.1:0", "--kafka-brokers", self.brokers,
                                       "--redis", self.redis_addr] + COMMON + list(extra))
        return p

    def produce(self, ref, signals):
        for s in signals:
            ref.add(s)
            self.producer.produce("aisle.signals", key=s.user_id, value=s.SerializeToString())
        self.producer.flush(10)

    def wait_equal(self, ref, what, timeout=30):
        deadline = time.time() + timeout
        while True:
            try:
                bad = self.reader.mismatches(ref)
            except grpc.RpcError as e:  # serve reconnecting to a restarted Redis
                bad = [str(e)]
            if not bad:
                return
            if time.time() > deadline:
                self.fail("%s: %d users differ, e.g. %s" % (what, len(bad), bad[:3]))
            time.sleep(0.2)

    def dead_letters(self, want, timeout=15):
        """(key, headers) of the dead letters: all of them once `want` have
        come, else what came by timeout."""
        return sup.dead_letters(self.brokers, lambda got: len(got) >= want, timeout)

    def signals(self, n, users, seed):
        return sup.make_signals(self.ev, n, users, ITEMS, seed)


class DeadLetterTest(IngestPathsTest):
    def test_refused_dead_letter_keeps_the_batch(self):
        # A bad message larger than the dead-letter producer's
        # message.max.bytes (1 MB) among valid ones, all in one batch.
        ref = sup.Reference()
        users = ["dl-user-%d" % i for i in range(8)]
        self.produce(ref, self.signals(150, users, seed=1))
        self.producer.produce("aisle.signals", key=users[0].encode(),
                              value=b"\xff" * 1500000)
        self.produce(ref, self.signals(150, users, seed=2))
        self.worker()
        self.wait_equal(ref, "valid signals beside a refused dead letter")
        letters = self.dead_letters(1)
        self.assertEqual(len(letters), 1, "the bad message was not dead-lettered")
        self.assertIn(b"too large", letters[0][1].get("aisle-error", b""))

    def test_failed_dead_letter_delivery_is_sent_again(self):
        ref = sup.Reference()
        users = ["dr-user-%d" % i for i in range(4)]
        self.produce(ref, self.signals(40, users, seed=3))
        self.producer.produce("aisle.signals", key=b"bad-one", value=b"\xfe\xff not a signal")
        self.producer.flush(10)
        # The next Produce requests (only ingest's dead letters are sent
        # from now on) fail for good: their delivery reports carry errors.
        self.mock("errors Produce TOPIC_AUTHORIZATION_FAILED TOPIC_AUTHORIZATION_FAILED "
                  "TOPIC_AUTHORIZATION_FAILED")
        w = self.worker()
        self.wait_equal(ref, "valid signals")
        letters = self.dead_letters(1, timeout=20)
        self.assertEqual([k for k, _ in letters][:1], [b"bad-one"],
                         "a dead letter that failed delivery was never sent again; log:\n" +
                         self.procs.log(w))
        # And the offsets were committed once it was delivered: a worker of
        # the same group finds nothing left to send.
        self.assertEqual(self.procs.stop(w), 0)
        w2 = self.worker(name="ingest-2")
        time.sleep(4)
        # The whole topic as it is now (no waiting out a timeout for a
        # letter that must not come).
        self.assertEqual(len(sup.dead_letters(self.brokers)), len(letters))
        self.assertEqual(self.procs.stop(w2), 0)


class RebalanceDuringOutageTest(IngestPathsTest):
    def test_partitions_assigned_while_redis_is_down_stay_paused(self):
        ref = sup.Reference()
        users = ["rb-user-%d" % i for i in range(24)]
        a = self.worker(name="ingest-a")
        self.produce(ref, self.signals(100, users, seed=4))
        self.wait_equal(ref, "before the outage")
        self.procs.stop(self.redis, timeout=5)
        self.procs.procs.remove(self.redis)
        # More than a batch: a holds 500 and waits for Redis with its
        # partitions paused; the rest stays in Kafka.
        self.produce(ref, self.signals(2000, users, seed=5))
        time.sleep(2)
        # b joins while a waits: the rebalance it starts revokes a's paused
        # partitions and hands them out again, to a and to b, as the mock
        # settles the group (some seconds, by when Redis is back). Every
        # partition must be read to its end: none may stay paused, none be
        # consumed and committed past.
        b = self.worker(name="ingest-b")
        time.sleep(3)
        self.redis = sup.start_persistent_redis(self, self.redis_port)
        self.wait_equal(ref, "after Redis came back", timeout=40)
        for w in (a, b):
            self.assertEqual(self.procs.stop(w), 0, self.procs.log(w))


class BraceIdsTest(IngestPathsTest):
    cluster = True

    def test_ids_with_braces_share_one_slot_and_can_be_deleted(self):
        ref = sup.Reference()
        odd = ["}first", "mid{dle}", "{tag}rest", "}{", "{", "}", "a{b", "x}y{z}"]
        plain = ["br-user-%d" % i for i in range(10)]
        self.worker()
        self.produce(ref, self.signals(300, odd + plain, seed=6))
        self.wait_equal(ref, "users with braces in their ids", timeout=20)
        for u in odd:
            r = self.reader.get(u)
            self.assertTrue(r.items or r.creators or r.dismissed, u)
            call = self.reader.channel.unary_unary(
                "/aisle.v1.Recommender/DeleteProfile",
                request_serializer=lambda m: m.SerializeToString(),
                response_deserializer=self.pb.DeleteProfileResponse.FromString)
            self.assertTrue(call(self.pb.DeleteProfileRequest(user_id=u), timeout=10).existed, u)
            r = self.reader.get(u)
            self.assertFalse(r.items or r.creators or r.dismissed, u)


class ErasureReplayTest(IngestPathsTest):
    def delete(self, user):
        call = self.reader.channel.unary_unary(
            "/aisle.v1.Recommender/DeleteProfile",
            request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=self.pb.DeleteProfileResponse.FromString)
        return call(self.pb.DeleteProfileRequest(user_id=user), timeout=10).existed

    def test_erasure_survives_a_replay_and_later_signals_count(self):
        ref = sup.Reference()
        users = ["er-user-%d" % i for i in range(6)]
        gone = users[0]
        w = self.worker()
        self.produce(ref, self.signals(200, users, seed=7))
        self.wait_equal(ref, "before the erasure")
        self.assertTrue(self.delete(gone))
        self.assertEqual(self.procs.stop(w), 0, self.procs.log(w))
        # What the erased user did before is forgotten; what comes after the
        # erasure builds a new profile.
        forgotten = ref.items.pop(gone, None), ref.creators.pop(gone, None), \
            ref.dismissed.pop(gone, None)
        self.assertTrue(any(forgotten))
        time.sleep(0.05)
        later = sup.make_signals(self.ev, 1, [gone], ["item-0"], seed=8)
        later[0].kind, later[0].weight = 2, 0.0  # one click
        self.produce(ref, later)
        # A new consumer group replays the whole log from the start.
        self.worker(["--group", "replay-%s" % uuid.uuid4().hex[:8]])
        self.wait_equal(ref, "after a replay by a new group")
        time.sleep(1)
        self.assertEqual(self.reader.mismatches(ref), [])


class CorruptProfileTest(IngestPathsTest):
    def test_corrupt_profile_is_dead_lettered_and_the_rest_applies(self):
        key = "aisle:u:{cp-bad}:profile"
        broken = b"AIPR\x01 not a whole record"
        ref = sup.Reference()
        users = ["cp-user-%d" % i for i in range(20)]
        sup.Resp(self.redis_port).cmd("SET", key, broken)
        bad = self.signals(30, ["cp-bad"], seed=9)
        for s in bad:  # not in the reference: nothing of them may apply
            self.producer.produce("aisle.signals", key=s.user_id, value=s.SerializeToString())
        self.produce(ref, self.signals(400, users, seed=10))
        w = self.worker()
        self.wait_equal(ref, "every other user's events")
        letters = self.dead_letters(len(bad))
        self.assertEqual(len(letters), len(bad), self.procs.log(w))
        for k, h in letters:
            self.assertEqual(k, b"cp-bad")
            self.assertIn(key.encode(), h.get("aisle-error", b""))
            self.assertIn(b"corrupt profile record", h.get("aisle-error", b""))
        self.assertEqual(sup.Resp(self.redis_port).cmd("GET", key, raw=True), broken)
        aisle_env.wait_for(lambda: aisle_env.caught_up(self.brokers, "aisle-ingest",
                                                       "aisle.signals", 4), 20,
                           "the offsets to be committed to the log's end", interval=0.5)
        self.assertEqual(self.procs.stop(w), 0, self.procs.log(w))


class CatalogBoundsTest(IngestPathsTest):
    def catalog(self):
        long_item = self.ev.CatalogItem(item_id="item-long", title="t", creator_id="c",
                                        category="c" * 2000, brand="b" * 1500,
                                        price_cents=100, in_stock=True, embedding=[1.0, 1.0])
        self.producer.produce("aisle.catalog", key="item-long",
                              value=long_item.SerializeToString())

    def test_categories_and_brands_are_length_checked(self):
        now = int(time.time() * 1000)
        w = self.worker()
        for i, item in enumerate(["item-long", "item-1"]):
            s = self.ev.Signal(event_id=uuid.uuid4().hex, user_id="cb-user", kind=2,
                               item_id=item, creator_id="c", ts_ms=now + i)
            self.producer.produce("aisle.signals", key="cb-user", value=s.SerializeToString())
        self.producer.flush(10)
        aisle_env.wait_for(lambda: len(self.reader.get("cb-user").items) == 2, 20,
                           "both signals applied")
        p = self.reader.get("cb-user")
        self.assertEqual([c.id for c in p.categories], ["cat-1"])
        self.assertEqual([b.id for b in p.brands], ["brand-1"])
        self.assertEqual(self.procs.stop(w), 0, self.procs.log(w))


if __name__ == "__main__":
    aisle_env.main()
