"""Shared support for Aisle's integration tests and tools: generated protobuf
modules, free ports, and real processes (redis-server, the Kafka mock
cluster, aisle serve / ingest) started and stopped around a test.

Run with Debian's /usr/bin/python3 (python3-grpcio, python3-protobuf,
python3-confluent-kafka)."""

import atexit
import importlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_PB_DIR = None

# In a Bazel test the tests' temp files go under TEST_TMPDIR, which Bazel
# keeps for a look after a failure and wipes before the next run; the
# system's temp dir would collect them run after run. Not TMPDIR for the
# children: serve makes its Unix socket there, and TEST_TMPDIR's path is
# longer than a socket's may be.
if os.environ.get("TEST_TMPDIR"):
    tempfile.tempdir = os.environ["TEST_TMPDIR"]


def protos():
    """Compiles proto/aisle/v1/*.proto with protoc into a temp dir once and
    returns (aisle_pb2, events_pb2)."""
    global _PB_DIR
    if _PB_DIR is None:
        _PB_DIR = tempfile.mkdtemp(prefix="aisle-pb-")
        atexit.register(shutil.rmtree, _PB_DIR, True)  # generated, nothing to keep
        src = os.path.join(ROOT, "proto")
        files = [os.path.join(src, "aisle", "v1", f) for f in ("aisle.proto", "events.proto",
                                                                 "experiments.proto")]
        subprocess.run(["protoc", "-I", src, "--python_out", _PB_DIR] + files, check=True)
        sys.path.insert(0, _PB_DIR)
    return (importlib.import_module("aisle.v1.aisle_pb2"),
            importlib.import_module("aisle.v1.events_pb2"))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def shared_dir():
    """shared/ beside the workspace (datasets, models): found from the real
    path of this file (the runfiles tree links back into the workspace), or
    AISLE_SHARED; None when there is none."""
    if os.environ.get("AISLE_SHARED"):
        return os.environ["AISLE_SHARED"]
    d = os.path.dirname(os.path.realpath(__file__))
    while d != os.path.dirname(d):
        if os.path.exists(os.path.join(d, "WORKSPACE")):
            return os.path.join(os.path.dirname(d), "shared")
        d = os.path.dirname(d)
    return None


def redis_module_args():
    """["--loadmodule", PATH] for every redis-server a test starts when
    AISLE_REDIS_MODULE names aisle_redis.so (the profile write as a native
    command), else []: tests run against both writes."""
    path = os.environ.get("AISLE_REDIS_MODULE")
    return ["--loadmodule", os.path.abspath(path)] if path else []


def aisle_binary():
    path = os.environ.get("AISLE_BIN") or os.path.join(ROOT, "bazel-bin", "aisle")
    if not os.access(path, os.X_OK):
        raise RuntimeError("aisle binary not found at %s (bazel build //:aisle)" % path)
    return path


class Procs:
    """Starts processes and stops every one of them on close()."""

    def __init__(self):
        self.procs = []
        self.started = {}  # name -> how many were started, for their logs' names
        self.logdir = tempfile.mkdtemp(prefix="aisle-test-logs-")

    def start(self, name, argv, ready_prefix=None, timeout=20, stdin=None, env=None):
        """Starts argv; with ready_prefix, waits for a stdout line starting
        with it and returns (proc, rest of that line)."""
        # One log per process, also when a test starts two of a kind. Counted
        # by starts, not by self.procs: a test removes a process it killed
        # on purpose, and its replacement must not truncate a live one's log
        # (both would then write into one file at their own offsets).
        n = self.started.get(name, 0)
        self.started[name] = n + 1
        log = open(os.path.join(self.logdir, "%s-%d.log" % (name, n)), "wb")
        p = subprocess.Popen(argv, stdout=subprocess.PIPE if ready_prefix else log,
                             stderr=log, stdin=stdin, start_new_session=True, env=env)
        p.name, p.logfile = name, log.name
        log.close()  # the child holds its own descriptor
        self.procs.append(p)
        if not ready_prefix:
            return p, None
        deadline = time.time() + timeout
        while time.time() < deadline:
            line = p.stdout.readline().decode()
            if line.startswith(ready_prefix):
                return p, line[len(ready_prefix):].strip()
            if not line and p.poll() is not None:
                break
        raise RuntimeError("%s did not start; log: %s\n%s" % (name, log.name, self.log(p)))

    def log(self, p):
        with open(p.logfile, errors="replace") as f:
            return f.read()[-4000:]

    def redis(self, module=True):
        """A redis-server, with the module when the run has one and module
        is true."""
        port = free_port()
        p, _ = self.start("redis", ["redis-server", "--port", str(port), "--bind", "127.0.0.1",
                                    "--save", "", "--appendonly", "no"] +
                                   (redis_module_args() if module else []))
        addr = "127.0.0.1:%d" % port
        wait_for(lambda: _redis_ping(port), 10, "redis-server to answer")
        return p, addr

    def kafka(self, partitions=4):
        p, boot = self.start("kafka", [aisle_binary(), "kafka-mock", "--partitions",
                                       str(partitions)], "bootstrap=")
        return p, boot

    def serve(self, brokers, redis_addr, dim, extra=(), timeout=20):
        """Starts aisle serve; dim None leaves it to the snapshot. The
        process's .http is its HTTP address."""
        argv = [aisle_binary(), "serve", "--listen", "127.0.0.1:0", "--http-listen",
                "127.0.0.1:0", "--kafka-brokers", brokers, "--redis", redis_addr]
        if "--tls-cert" not in extra:
            argv.append("--insecure")
        if dim is not None:
            argv += ["--dim", str(dim)]
        # serve prints its HTTP port, then its gRPC port.
        p, http = self.start("serve", argv + list(extra), "aisle serve: http on port ", timeout)
        p.http = "127.0.0.1:" + http
        line = p.stdout.readline().decode()
        prefix = "aisle serve: listening on port "
        if not line.startswith(prefix):
            raise RuntimeError("serve did not start; log: %s\n%s" % (p.logfile, self.log(p)))
        return p, "127.0.0.1:" + line[len(prefix):].strip()

    def ingest(self, brokers, redis_addr, extra=()):
        p, _ = self.start("ingest", [aisle_binary(), "ingest", "--http-listen", "127.0.0.1:0",
                                     "--kafka-brokers", brokers, "--redis", redis_addr]
                          + list(extra))
        return p

    def stop(self, p, sig=signal.SIGTERM, timeout=15):
        if p.poll() is None:
            p.send_signal(sig)
            try:
                p.wait(timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        return p.returncode

    def close(self):
        """Stops everything; returns the names of aisle processes that did
        not exit cleanly (a sanitizer report makes the exit status non-zero)."""
        unclean = []
        for p in reversed(self.procs):
            rc = self.stop(p)
            for f in (p.stdout, p.stdin):
                if f:
                    f.close()
            if p.name != "redis" and rc != 0:
                unclean.append("%s (exit %s): %s" % (p.name, rc, self.log(p)[-1500:]))
        # Outside Bazel (benches, tools) nobody else removes the logs: keep
        # them only when a process failed, for the path in the message.
        if not unclean and not os.environ.get("TEST_TMPDIR"):
            shutil.rmtree(self.logdir, True)
        return unclean

    def close_checked(self, ignore=()):
        """close(), raising AssertionError when an aisle process (other than
        those whose names start with one of ignore) did not exit cleanly."""
        unclean = [u for u in self.close() if not u.startswith(tuple(ignore))]
        if unclean:
            raise AssertionError("processes did not stop cleanly:\n" + "\n".join(unclean))


def healthy(channel):
    """Whether grpc.health.v1 says SERVING (the catalog has loaded)."""
    import grpc
    call = channel.unary_unary("/grpc.health.v1.Health/Check",
                               request_serializer=lambda b: b,
                               response_deserializer=lambda b: b)
    try:
        return call(b"", timeout=1) == b"\x08\x01"  # field 1 (status) = SERVING
    except grpc.RpcError:
        return False


def wait_profile(channel, user_id, timeout=600):
    """Waits until GetProfile shows items for user_id (a bench's last
    generated user: its signals were produced last, so ingest has applied
    the others)."""
    pb, _ = protos()
    get = channel.unary_unary("/aisle.v1.Recommender/GetProfile",
                              request_serializer=lambda m: m.SerializeToString(),
                              response_deserializer=pb.Profile.FromString)
    wait_for(lambda: len(get(pb.GetProfileRequest(user_id=user_id)).items) > 0, timeout,
             "the signals to be ingested", 0.2)


def caught_up(brokers, group, topic, partitions):
    """Whether consumer group has committed every message of topic's
    partitions (0..partitions-1)."""
    from confluent_kafka import Consumer, TopicPartition
    c = Consumer({"bootstrap.servers": brokers, "group.id": group})
    try:
        parts = [TopicPartition(topic, p) for p in range(partitions)]
        done = 0
        for tp in c.committed(parts, timeout=10):
            lo, hi = c.get_watermark_offsets(TopicPartition(topic, tp.partition), timeout=10)
            done += tp.offset >= hi
        return done == partitions
    finally:
        c.close()


def _redis_ping(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def wait_for(cond, timeout, what, interval=0.02):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if cond():
            return
        time.sleep(interval)
    raise AssertionError("timed out after %gs waiting for %s" % (timeout, what))


# RANK_N_FEATURES in ranker/rank.h: the features serve logs and a served
# model must take (a model of another count is refused).
RANKER_FEATURES = 13


def train_ranker(d, name, sign, rounds=20, n_features=RANKER_FEATURES):
    """A ranker model file from `aisle rank train` in directory d, trained on
    two days of 200 random pages of 8 items whose clicks go to the item with
    the highest (sign 1) or lowest (sign -1) first feature (the ranker's
    personal score); returns its path."""
    import random
    from google.protobuf.internal.encoder import _VarintBytes
    _, ev = protos()
    xp = importlib.import_module("aisle.v1.experiments_pb2")
    rnd = random.Random(7)
    exposures, signals = os.path.join(d, name + ".exp"), os.path.join(d, name + ".sig")
    with open(exposures, "wb") as fe, open(signals, "wb") as fs:
        for p in range(400):
            ts = 1700000000000 + (p // 200) * 86400000 + p * 1000
            e = xp.Exposure(request_id="r%d" % p, user_id="t%d" % p, ts_ms=ts)
            rows = [[rnd.random() for _ in range(n_features)] for _ in range(8)]
            for i, f in enumerate(rows):
                e.items.add(item_id="x%d" % i, position=i, score=f[0], features=f)
            best = max(range(8), key=lambda i: sign * rows[i][0])
            sig = ev.Signal(event_id="s%d" % p, user_id=e.user_id, kind=ev.CLICK,
                            item_id="x%d" % best, ts_ms=ts + 1000)
            for m, f in ((e, fe), (sig, fs)):
                b = m.SerializeToString()
                f.write(_VarintBytes(len(b)) + b)
    out = os.path.join(d, name + ".model")
    subprocess.run([aisle_binary(), "rank", "train", "--exposures", exposures, "--signals",
                    signals, "--out", out, "--rounds", str(rounds)], check=True,
                   stdout=subprocess.DEVNULL)
    return out


def main():
    """unittest.main for a test file that bazel may shard (shard_count in
    BUILD): the file's tests, in name order, are dealt out to the shards in
    turn, so each shard starts servers for its own share only. Command-line
    arguments (bazel's --test_arg) pick tests by name as unittest's do."""
    import unittest
    total = int(os.environ.get("TEST_TOTAL_SHARDS", "1"))
    index = int(os.environ.get("TEST_SHARD_INDEX", "0"))
    if os.environ.get("TEST_SHARD_STATUS_FILE"):
        open(os.environ["TEST_SHARD_STATUS_FILE"], "w").close()  # says it shards
    loader = unittest.defaultTestLoader
    module = sys.modules["__main__"]
    suite = loader.loadTestsFromNames(sys.argv[1:], module) if sys.argv[1:] else \
        loader.loadTestsFromModule(module)
    tests = sorted(_cases(suite), key=lambda t: t.id())
    mine = unittest.TestSuite(t for i, t in enumerate(tests) if i % total == index)
    sys.exit(0 if unittest.TextTestRunner(verbosity=2).run(mine).wasSuccessful() else 1)


def _cases(suite):
    """The test cases of a suite, nested suites flattened."""
    for t in suite:
        if hasattr(t, "__iter__"):
            yield from _cases(t)
        else:
            yield t
