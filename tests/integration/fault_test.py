#!/usr/bin/python3
"""aisle ingest under faults, on real parts: two workers in one group on the
Kafka mock cluster (three brokers) and a real redis-server. While signals
stream in, workers are killed with SIGKILL and replaced (their partitions
move through rebalances), Redis is killed and restarted (workers pause,
retry and resume by themselves), a broker goes down and comes back, offset
commits fail (the batch is replayed), and malformed messages are mixed in.
Afterwards every profile equals the reference computed here from the
produced log (nothing lost, nothing counted twice) and the dead-letter
topic holds exactly the bad messages."""

import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import uuid

from confluent_kafka import Producer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import aisle_env  # noqa: E402
import ingest_support as sup  # noqa: E402

ITEMS = ["item-%d" % i for i in range(30)]
USERS = ["f-user-%d" % i for i in range(50)]
N_GOOD = 3000
# A killed worker holds its partitions until its session times out: 3 s
# here instead of ingest's 10 s (the mock cluster honours the member's
# setting), so each kill costs the stream 3 s, not 10.
COMMON = ["--half-life-s", sup.HALF_LIFE, "--kafka-opt", "session.timeout.ms=3000",
          "--kafka-opt", "heartbeat.interval.ms=300"]


class FaultTest(unittest.TestCase):
    def setUp(self):
        self.pb, self.ev = aisle_env.protos()
        self.procs = aisle_env.Procs()
        self.dir = tempfile.mkdtemp(prefix="aisle-fault-")
        self.redis_port = aisle_env.free_port()
        self.redis_addr = "127.0.0.1:%d" % self.redis_port
        try:
            self.redis = self.start_redis()
            self.kafka, self.brokers = self.procs.start("kafka", [
                aisle_env.aisle_binary(), "kafka-mock", "--brokers", "3", "--partitions", "6"],
                "bootstrap=", stdin=subprocess.PIPE)
            self.producer = Producer({"bootstrap.servers": self.brokers, "linger.ms": 5,
                                      "enable.idempotence": True})
            sup.start_shop(self, self.redis_addr, ITEMS, 2)
        except Exception:
            self.procs.close()
            raise

    def tearDown(self):
        sup.finish(self)

    def start_redis(self):
        # Every write is on disk before it is acknowledged, so a SIGKILL
        # loses nothing ingest was told had been written.
        p, _ = self.procs.start("redis", [
            "redis-server", "--port", str(self.redis_port), "--bind", "127.0.0.1",
            "--save", "", "--appendonly", "yes", "--appendfsync", "always", "--dir", self.dir] +
            aisle_env.redis_module_args())
        aisle_env.wait_for(lambda: aisle_env._redis_ping(self.redis_port), 10, "redis-server")
        return p

    def mock(self, command):
        """A fault command to `aisle kafka-mock` (on its stdin)."""
        self.kafka.stdin.write((command + "\n").encode())
        self.kafka.stdin.flush()
        self.assertEqual(self.kafka.stdout.readline().decode().strip(), "ok", command)

    def kill(self, p):
        os.killpg(p.pid, signal.SIGKILL)
        p.wait()
        self.procs.procs.remove(p)  # killed on purpose: not an unclean exit

    def worker(self):
        return self.procs.ingest(self.brokers, self.redis_addr, COMMON)

    def bad_messages(self):
        """(key, value) of messages ingest must refuse."""
        now = int(time.time() * 1000)
        bad = [(b"bad-garbage-%d" % i, b"\xff\xfe" + uuid.uuid4().bytes) for i in range(5)]
        for i, fields in enumerate([dict(user_id=""), dict(kind=99), dict(weight=5000.0),
                                    dict(ts_ms=5), dict(event_id="")]):
            s = dict(event_id=uuid.uuid4().hex, user_id="u", kind=1, item_id="item-1",
                     creator_id="c", ts_ms=now)
            s.update(fields)
            bad.append((b"bad-invalid-%d" % i, self.ev.Signal(**s).SerializeToString()))
        bad.append((b"bad-empty", None))
        return bad

    def stream(self, ref, signals, bad, seconds, hurry):
        """Produces signals (and the bad messages spread among them) over
        about `seconds`, the rest at once when hurry is set."""
        chunks = 300
        per = len(signals) // chunks + 1
        for c in range(chunks):
            for s in signals[c * per:(c + 1) * per]:
                ref.add(s)
                self.producer.produce("aisle.signals", key=s.user_id, value=s.SerializeToString())
            if c % (chunks // len(bad)) == 0 and bad:
                k, v = bad.pop()
                self.producer.produce("aisle.signals", key=k, value=v)
            self.producer.poll(0)
            if not hurry.is_set():
                time.sleep(seconds / chunks)
        for k, v in bad:
            self.producer.produce("aisle.signals", key=k, value=v)
        self.producer.flush(30)

    def write_calls(self):
        """The profile write's calls Redis has taken since it started."""
        stats = sup.redis_cli(self.redis_port, "INFO", "commandstats")
        return sum(int(m.group(1)) for line in stats
                   for m in [re.match(r"cmdstat_(?:aisle\.apply|evalsha):calls=(\d+)", line)]
                   if m)

    def wait_writing(self):
        """Until Redis takes a profile write: the workers are applying."""
        before = self.write_calls()
        aisle_env.wait_for(lambda: self.write_calls() > before, 60, "the workers to write",
                           interval=0.05)

    def wait_assigned(self, p):
        """Until worker p holds partitions."""
        def assigned():
            with open(p.logfile, errors="replace") as f:
                return re.search(r"assigned [1-9]\d* partitions", f.read())
        aisle_env.wait_for(assigned, 60, "a worker to be assigned partitions", interval=0.1)

    def dead_letters(self, want):
        """(key, (origin partition, offset)) of every dead letter, once
        `want` keys have come (or after 20 s)."""
        got = sup.dead_letters(self.brokers, lambda got: len({k for k, _ in got}) >= want, 20)
        return [(k, (h["aisle-origin-partition"], h["aisle-origin-offset"])) for k, h in got]

    def test_kills_restarts_and_bad_input_lose_nothing_and_count_once(self):
        ref = sup.Reference()
        signals = sup.make_signals(self.ev, N_GOOD, USERS, ITEMS, seed=7)
        bad = self.bad_messages()
        bad_keys = {k for k, _ in bad}
        workers = [self.worker(), self.worker()]
        hurry = threading.Event()
        producer = threading.Thread(target=self.stream,
                                    args=(ref, signals, list(bad), 60, hurry))
        producer.start()
        try:
            # Faults while the stream runs and the workers write: Redis dies
            # and comes back, each worker is killed mid-stream and replaced.
            # Each waits for a write to land first, a kill also for its
            # victim to hold partitions: on a timer alone, every fault came
            # while the group was still forming (the mock coordinator waits
            # 3 s for members, and a killed member holds its partitions
            # until its session ends), so nothing was written until
            # after the last one and no write ever met Redis down.
            for fault in ["redis", "broker", "kill0", "commits", "kill1", "kill0"]:
                if fault.startswith("kill"):
                    self.wait_assigned(workers[int(fault[-1])])
                self.wait_writing()
                if fault == "redis":
                    self.kill(self.redis)
                    time.sleep(1.0)
                    self.redis = self.start_redis()
                elif fault == "broker":
                    self.mock("down 2")
                    time.sleep(1.5)
                    self.mock("up 2")
                elif fault == "commits":
                    self.mock("errors OffsetCommit REQUEST_TIMED_OUT REQUEST_TIMED_OUT "
                              "NOT_COORDINATOR")
                else:
                    i = int(fault[-1])
                    self.kill(workers[i])
                    workers[i] = self.worker()
        finally:
            hurry.set()
            producer.join()

        deadline = time.time() + 60
        while True:
            bad_users = self.reader.mismatches(ref)
            if not bad_users:
                break
            if time.time() > deadline:
                self.fail("%d users differ from the reference, e.g. %s" %
                          (len(bad_users), bad_users[:3]))
            time.sleep(0.5)

        letters = self.dead_letters(len(bad_keys))
        self.assertEqual({k for k, _ in letters}, bad_keys)
        # A worker killed between sending a dead letter and committing sends
        # it again after the replay: the same origin offset, never another.
        self.assertEqual(len({o for _, o in letters}), len(bad_keys))
        print("dead letters: %d for %d bad messages" % (len(letters), len(bad_keys)),
              file=sys.stderr)
        for p in workers:  # SIGTERM: finish, commit, leave the group, exit 0
            self.assertEqual(self.procs.stop(p), 0, self.procs.log(p))
        self.assertIn("stats: consumed", self.procs.log(workers[0]))
        logs = "".join(open(os.path.join(self.procs.logdir, f), errors="replace").read()
                       for f in os.listdir(self.procs.logdir) if f.startswith("ingest"))
        retries, resumes = logs.count("retrying in"), logs.count("profile store is back")
        print("ingest logs: %d Redis retries, %d resumes, script fallback logged: %s" % (
              retries, resumes, "writing with the Lua script" in logs), file=sys.stderr)
        # Redis went down while the workers wrote: writes failed, were
        # retried and went through once it was back.
        self.assertGreater(retries, 0)
        self.assertGreater(resumes, 0)
        # The write under test: AISLE.APPLY where Redis loads the module
        # (also after its restart), else the script.
        module = bool(aisle_env.redis_module_args())
        stats = "\n".join(sup.redis_cli(self.redis_port, "INFO", "commandstats"))
        # (Without the module nothing else can have applied the events the
        # checks above counted, so the script did, and every worker says it
        # fell back.)
        self.assertEqual("cmdstat_aisle.apply:" in stats, module)
        self.assertEqual("writing with the Lua script" in logs, not module)


if __name__ == "__main__":
    unittest.main(verbosity=2)
