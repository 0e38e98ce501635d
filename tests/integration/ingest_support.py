"""Support for the ingest fault and cluster tests: a generated signal log,
the profiles it must produce computed independently of Aisle, Redis
commands through redis-cli, and profile reads over gRPC.

The reference model is the one README describes: kind weights (view 1,
click 2, add-to-cart 4, purchase 8, like 3, follow 5, dismiss 4) times the
signal's multiplier; an item event adds a quarter of that to its creator, a
follow all of it, a dismissal goes to the dismissed set only. Tests run
ingest and serve with a half-life of 1e9 s, so decay over a test's minute
changes weights by less than 1e-7 and the sums can be compared directly."""

import os
import random
import shutil
import socket
import struct
import subprocess
import time
import uuid
from collections import defaultdict

import grpc

HALF_LIFE = "1000000000"
KIND_WEIGHTS = {1: 1.0, 2: 2.0, 3: 4.0, 4: 8.0, 5: 3.0, 6: 5.0, 7: 4.0}
FOLLOW, DISMISS = 6, 7


class Reference:
    """Expected profiles, from the events the test produced (each counted
    once however often it is delivered)."""

    def __init__(self):
        self.items = defaultdict(lambda: defaultdict(float))
        self.creators = defaultdict(lambda: defaultdict(float))
        self.dismissed = defaultdict(lambda: defaultdict(float))
        self.events = {}

    def add(self, s):
        if s.event_id in self.events:
            return
        self.events[s.event_id] = s
        w = KIND_WEIGHTS[s.kind] * (s.weight or 1.0)
        if s.kind == FOLLOW:
            self.creators[s.user_id][s.creator_id] += w
        elif s.kind == DISMISS:
            self.dismissed[s.user_id][s.item_id] += w
        else:
            self.items[s.user_id][s.item_id] += w
            self.creators[s.user_id][s.creator_id] += w / 4

    def users(self):
        return set(self.items) | set(self.creators) | set(self.dismissed)


def make_signals(ev, n, users, items, seed):
    """n random valid signals over users × items, each with a fresh id."""
    rnd = random.Random(seed)
    now = int(time.time() * 1000)
    out = []
    for i in range(n):
        kind = rnd.choice(list(KIND_WEIGHTS))
        item = rnd.choice(items)
        out.append(ev.Signal(event_id=uuid.uuid4().hex, user_id=rnd.choice(users), kind=kind,
                             item_id="" if kind == FOLLOW else item,
                             creator_id="creator-%s" % item[-1], ts_ms=now - (n - i),
                             weight=rnd.choice([0.0, 0.5, 2.0])))
    return out


def diff(profile, ref, user):
    """What differs between a Profile message and the reference for user;
    empty when they agree."""
    def close(got, want):
        if set(got) != set(want):
            return "ids %s != %s" % (sorted(got), sorted(want))
        bad = [k for k in want if abs(got[k] - want[k]) > 1e-6 * max(1.0, want[k])]
        return "weights of %s: %s != %s" % (bad, [got[k] for k in bad],
                                             [want[k] for k in bad]) if bad else ""
    out = []
    for name, got, want in (("items", profile.items, ref.items[user]),
                            ("creators", profile.creators, ref.creators[user]),
                            ("dismissed", profile.dismissed, ref.dismissed[user])):
        d = close({e.id: e.weight for e in got}, dict(want))
        if d:
            out.append("%s %s: %s" % (user, name, d))
    return "; ".join(out)


def dead_letters(brokers, enough=lambda got: True, timeout=15):
    """The dead letters in aisle.signals.dlq as (key, headers) pairs, read
    from its start by assignment, not by joining a consumer group (a new
    group forms on the mock only after its 3 s join delay): once
    enough(got) holds, everything up to the topic's end, else what came by
    timeout."""
    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition
    topic = "aisle.signals.dlq"
    c = Consumer({"bootstrap.servers": brokers, "group.id": "dlq-reader",
                  "enable.auto.commit": False})
    got, parts = [], []
    deadline = time.time() + timeout
    try:
        while time.time() < deadline:
            if not parts:  # the topic comes with the first dead letter
                t = c.list_topics(topic, timeout=5).topics.get(topic)
                parts = [TopicPartition(topic, p, OFFSET_BEGINNING)
                         for p in (t.partitions if t and not t.error else [])]
                if parts:
                    c.assign(parts)
                else:
                    time.sleep(0.2)
                continue
            m = c.poll(0.2)
            if m is not None and not m.error():
                got.append((m.key(), dict(m.headers() or [])))
            elif m is None and enough(got) and _at_end(c, parts):
                break
    finally:
        c.close()
    return got


def _at_end(c, parts):
    """Whether consumer c has read every assigned partition to its end."""
    for tp in c.position(parts):
        hi = c.get_watermark_offsets(tp, timeout=5)[1]
        if hi > 0 and tp.offset < hi:
            return False
    return True


def redis_cli(port, *args, cluster=False):
    """Runs one Redis command with redis-cli; returns its output lines."""
    argv = ["redis-cli", "-p", str(port)] + (["-c"] if cluster else []) + ["--raw"]
    r = subprocess.run(argv + [str(a) for a in args], capture_output=True, text=True,
                       timeout=30)
    if r.returncode != 0:
        raise RuntimeError("redis-cli %s: %s" % (" ".join(map(str, args)), r.stderr))
    return r.stdout.splitlines()


def parse_record(b):
    """A profile record (services/profile/precord.h, the module's layout) as
    the hash layout's fields: {"i:ID": weight, "o:ORIGIN": offset,
    "last_ms": .., "erased": .., "lm": .., "n": .., "m": ..}."""
    if len(b) < 56 or b[:5] != b"AIPR\x01":
        raise ValueError("not a profile record")
    count, marks, heap = struct.unpack_from("<III", b, 8)
    last, erased, lm, n = struct.unpack_from("<dddd", b, 24)
    base = 56 + 16 * count
    if len(b) != base + heap:
        raise ValueError("a profile record of the wrong length")
    out = {"last_ms": last, "erased": erased, "n": n, "m": count - marks}
    if lm == lm:  # NaN until the first event
        out["lm"] = lm
    for i in range(count):
        off, length, kind, _, v = struct.unpack_from("<IHBBd", b, 56 + 16 * i)
        out["%c:%s" % (kind, b[base + off:base + off + length].decode())] = v
    return out


def profile_fields(port, user, cluster=False):
    """The stored fields of user's profile in either layout (the module's
    record or the script's hash), as parse_record names them."""
    key = "aisle:u:{%s}:profile" % user
    if redis_cli(port, "TYPE", key, cluster=cluster) == ["string"]:
        argv = ["redis-cli", "-p", str(port)] + (["-c"] if cluster else []) + ["--raw"]
        r = subprocess.run(argv + ["GET", key], capture_output=True, timeout=30, check=True)
        return parse_record(r.stdout[:-1])  # --raw ends the value with a newline
    flat = redis_cli(port, "HGETALL", key, cluster=cluster)
    return {flat[i]: float(flat[i + 1]) for i in range(0, len(flat) - 1, 2)}


class Resp:
    """A minimal blocking Redis client (RESP) for tests and benches that poll
    or send many commands (redis-cli a command is too slow for that)."""

    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port))
        self.f = self.s.makefile("rb")

    def cmd(self, *args, raw=False):
        """The reply; bulk strings as bytes when raw, else text."""
        out = b"*%d\r\n" % len(args)
        for a in args:
            a = a if isinstance(a, bytes) else str(a).encode()
            out += b"$%d\r\n%s\r\n" % (len(a), a)
        self.s.sendall(out)
        return self.read(raw)

    def has_field(self, key, field):
        """Whether the profile at key holds field ("i:ID"), in either layout:
        the module's record (one GET) or the script's hash."""
        b = self.cmd("GET", key, raw=True)
        if isinstance(b, bytes):
            return field in parse_record(b)
        return b is not None and b.startswith("WRONGTYPE") and \
            self.cmd("HGET", key, field) is not None

    def read(self, raw=False):
        line = self.f.readline()[:-2]
        t, rest = line[:1], line[1:]
        if t in (b"+", b"-"):
            return rest.decode()
        if t == b":":
            return int(rest)
        if t == b"$":
            n = int(rest)
            if n < 0:
                return None
            b = self.f.read(n + 2)[:-2]
            return b if raw else b.decode()
        if t == b"*":
            return [self.read(raw) for _ in range(int(rest))]
        raise RuntimeError("bad reply %r" % line)


class ProfileReader:
    """GetProfile over gRPC."""

    def __init__(self, pb, addr):
        self.pb = pb
        self.channel = grpc.insecure_channel(addr)
        self.call = self.channel.unary_unary(
            "/aisle.v1.Recommender/GetProfile",
            request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=pb.Profile.FromString)

    def get(self, user):
        return self.call(self.pb.GetProfileRequest(user_id=user), timeout=10)

    def mismatches(self, ref):
        return [d for d in (diff(self.get(u), ref, u) for u in sorted(ref.users())) if d]

    def close(self):
        self.channel.close()


def start_persistent_redis(test, port):
    """A redis-server on port whose every write is on disk before it is
    acknowledged (test.dir), so a restart keeps what ingest was told had
    been written. Its name is "redis": stopping it is no failure."""
    import aisle_env
    p, _ = test.procs.start("redis", [
        "redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
        "--appendonly", "yes", "--appendfsync", "always", "--dir", test.dir] +
        aisle_env.redis_module_args())
    aisle_env.wait_for(lambda: aisle_env._redis_ping(port), 10, "redis-server")
    return p


def start_cluster(test, masters=3):
    """A Redis Cluster of `masters` masters on loopback (files in test.dir);
    returns their ports once the cluster is ok."""
    import aisle_env
    ports = []
    for _ in range(masters):
        port = aisle_env.free_port()
        while port + 10000 > 65535:  # the cluster bus listens at port + 10000
            port = aisle_env.free_port()
        test.procs.start("redis-%d" % port, [
            "redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
            "--appendonly", "no", "--cluster-enabled", "yes", "--cluster-config-file",
            os.path.join(test.dir, "nodes-%d.conf" % port), "--dir", test.dir] +
            aisle_env.redis_module_args())
        test.procs.procs[-1].name = "redis"  # a killed server is no failure
        aisle_env.wait_for(lambda: aisle_env._redis_ping(port), 10, "redis-server")
        ports.append(port)
    subprocess.run(["redis-cli", "--cluster", "create"] + ["127.0.0.1:%d" % p for p in ports] +
                   ["--cluster-replicas", "0", "--cluster-yes"],
                   check=True, capture_output=True, timeout=60)
    aisle_env.wait_for(lambda: all("cluster_state:ok" in redis_cli(p, "CLUSTER", "INFO")
                                   for p in ports), 20, "the cluster to be ok")
    return ports


def start_shop(test, redis_addr, items, dim):
    """Puts items in the catalog (category cat-N, brand brand-N), starts
    aisle serve on redis_addr and sets test.reader. test has procs,
    producer, brokers and ev."""
    for i, item in enumerate(items):
        msg = test.ev.CatalogItem(item_id=item, title=item, creator_id="c",
                                  category="cat-%d" % (i % 3), brand="brand-%d" % (i % 2),
                                  price_cents=100, in_stock=True,
                                  embedding=[1.0, float(i)] + [0.0] * (dim - 2))
        test.producer.produce("aisle.catalog", key=item, value=msg.SerializeToString())
    test.producer.flush(10)
    _, addr = test.procs.serve(test.brokers, redis_addr, dim, ["--half-life-s", HALF_LIFE])
    test.reader = ProfileReader(test.pb, addr)


def finish(test):
    """tearDown: stops everything; fails when an aisle process did not exit
    cleanly."""
    test.reader.close()
    unclean = test.procs.close()
    shutil.rmtree(test.dir, ignore_errors=True)
    test.assertEqual(unclean, [], "processes did not stop cleanly")
