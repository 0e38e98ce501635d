#!/usr/bin/python3
"""Figures for `aisle ingest` on this machine, everything local (redis-server,
the Kafka mock cluster, the workers and the load all share its cores):

1. event-to-profile delay p50/p99 at a fixed offered load (default 20,000
   signals/s): probe signals among the load are timed from produce to the
   moment their item shows in Redis;
2. sustained signals/s with 1 and then 2 workers (one group each) draining
   a backlog, from committed offsets, with Redis's commands and CPU a
   signal: the worker writing with AISLE.APPLY (Redis with aisle_redis.so,
   AISLE_REDIS_MODULE), then the same binary on a Redis without the module
   (the Lua script's write), and with --old BIN that binary (an older
   build), right after each, so they compare under the same load;
3. the bound: redis-benchmark pipelining the same write calls, AISLE.APPLY
   and the script's EVALSHA (one event per user, as a backlog of many users
   comes to, 1 and 64 users a call), with Redis's CPU a signal, and with
   --old-module the older module's AISLE.APPLY on its own Redis (the hash
   layout before the profile record), in the same run;
4. the bound of each stage alone: a bare consumer (librdkafka, through
   confluent_kafka) draining the backlog from the mock cluster, with the
   CPU the mock and the consumer spent a message; and, from each drain,
   the signals/s the worker's CPU a signal and Redis's would allow if
   either had a core to itself.
Run through bench/ingest/run.sh."""

import argparse
import os
import random
import re
import statistics
import subprocess
import sys
import threading
import time
import uuid

from confluent_kafka import Consumer, Producer, TopicPartition

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
import aisle_env  # noqa: E402
import ingest_support  # noqa: E402
from ingest_support import Resp  # noqa: E402

PARTITIONS = 16
nan = float("nan")
TOPIC = "aisle.signals"


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p / 100 * len(xs)))]


def committed(c):
    """Offsets committed by c's group, summed; None when the busy mock
    cluster did not answer in time."""
    try:
        parts = c.committed([TopicPartition(TOPIC, p) for p in range(PARTITIONS)], timeout=10)
    except Exception:
        return None
    return sum(max(tp.offset, 0) for tp in parts)


def end_offsets(brokers):
    c = Consumer({"bootstrap.servers": brokers, "group.id": "bench-watermarks"})
    try:
        return sum(c.get_watermark_offsets(TopicPartition(TOPIC, p), timeout=10)[1]
                   for p in range(PARTITIONS))
    finally:
        c.close()


# The load's producer linger. Not librdkafka's 5 ms default lowered to 2:
# the mock cluster finds a fetch's offset by walking the partition's
# message sets from the oldest, in the one thread that also takes the
# produce requests, so a message set every 2 ms a partition made each
# fetch slower through the run until acks took seconds (p99 delay 357 ms
# quiet, seconds at load 5); at 10 ms it keeps up. Kafka indexes offsets.
LINGER_MS = 10


def delay_run(procs, ev, brokers, redis_addr, port, rate, seconds, binary):
    """Offered load at `rate`/s with a probe every 10 ms into one worker
    (`binary`); returns the offered rate, the probes' delays to the profile
    and to the broker's ack (ms), and the count of probes."""
    rnd = random.Random(1)
    now = int(time.time() * 1000)
    n = rate * seconds
    # Keyed by user, as producers do: the users spread over the partitions.
    pool = []
    for _ in range(n):
        user = "u%d" % rnd.randrange(20000)
        pool.append((user, ev.Signal(event_id=uuid.uuid4().hex, user_id=user,
                                     kind=rnd.choice([1, 2, 3, 5]),
                                     item_id="i%d" % rnd.randrange(5000),
                                     creator_id="c%d" % rnd.randrange(200),
                                     ts_ms=now).SerializeToString()))
    w = procs.start("ingest", [binary, "ingest", "--http-listen", "127.0.0.1:0",
                               "--kafka-brokers", brokers, "--redis", redis_addr,
                               "--group", "bench-delay"])[0]
    p = Producer({"bootstrap.servers": brokers, "linger.ms": LINGER_MS,
                  "queue.buffering.max.messages": 1000000})
    r = Resp(port)
    # Warm-up: wait until the worker has its partitions and applies.
    # A probe user of its own a run: a later run must not find this one's
    # probes already applied.
    probe_user = "probe-%s" % uuid.uuid4().hex[:8]
    probe_key = "aisle:u:{%s}:profile" % probe_user
    acks = []

    def probe(tag):
        s = ev.Signal(event_id=uuid.uuid4().hex, user_id=probe_user, kind=1, item_id=tag,
                      creator_id="c", ts_ms=int(time.time() * 1000))
        t0 = time.time()
        p.produce(TOPIC, key=probe_user, value=s.SerializeToString(),
                  on_delivery=lambda err, msg: acks.append((time.time() - t0) * 1000))
        p.poll(0)
    probe("warm")
    p.flush(10)
    aisle_env.wait_for(lambda: r.has_field(probe_key, "i:warm"),
                       60, "the worker to start applying")
    sent = {}
    done = threading.Event()
    delays = []

    def watch():
        pending = {}
        while not done.is_set() or pending or sent:
            for k in list(sent):
                pending[k] = sent.pop(k)
            for k, t0 in list(pending.items()):
                if r.has_field(probe_key, "i:" + k):
                    delays.append((time.time() - t0) * 1000)
                    del pending[k]
            if done.is_set() and time.time() > end_by:
                break
            time.sleep(0.0005)
    end_by = time.time() + seconds + 30
    t = threading.Thread(target=watch)
    t.start()
    start = time.time()
    i = 0
    k = 0
    while i < n:
        due = int((time.time() - start) * rate)
        while i < min(due, n):
            p.produce(TOPIC, key=pool[i][0], value=pool[i][1])
            i += 1
        p.poll(0)
        if (time.time() - start) * 100 > k:
            tag = "probe-%d" % k
            sent[tag] = time.time()
            probe(tag)
            k += 1
        time.sleep(0.0005)
    offered = n / (time.time() - start)
    p.flush(30)
    done.set()
    t.join()
    procs.stop(w)
    return offered, delays, acks, k


def drain_run(procs, brokers, redis_addr, port, workers, total, binary):
    Resp(port).cmd("FLUSHALL")
    group = "bench-drain-%d-%s" % (workers, uuid.uuid4().hex[:8])
    ws = [procs.start("ingest", [binary, "ingest", "--http-listen", "127.0.0.1:0",
                                 "--kafka-brokers", brokers, "--redis", redis_addr,
                                 "--group", group])[0] for _ in range(workers)]
    samples = []
    watcher = Consumer({"bootstrap.servers": brokers, "group.id": group})
    while True:
        c = committed(watcher)
        if c is not None:
            samples.append((time.time(), c))
            if c >= total:
                break
        time.sleep(0.25)
    watcher.close()
    cpu = sum(proc_cpu(w.pid) for w in ws)
    for w in ws:
        procs.stop(w)
    # From the first commit on: the group's join and the catalog read are
    # start-up, not throughput.
    t0, c0 = next((t, c) for t, c in samples if c > 0)
    t1, c1 = samples[-1]
    return (c1 - c0) / (t1 - t0), cpu


def consume_bound(brokers, total, mock_pid):
    """A bare consumer of a fresh group draining the backlog (messages/s
    from its first message on), and the CPU a message of the mock cluster
    and of this process (the consumer's librdkafka threads and the Python
    loop: an upper bound of the client's share)."""
    c = Consumer({"bootstrap.servers": brokers, "group.id": "bench-bare-" + uuid.uuid4().hex[:8],
                  "auto.offset.reset": "earliest", "enable.auto.commit": False})
    c.subscribe([TOPIC])
    n, t0, first = 0, None, 0
    mock0, me0 = proc_cpu(mock_pid), time.process_time()
    deadline = time.time() + 300
    while n < total and time.time() < deadline:
        got = c.consume(10000, 1.0)
        if got and t0 is None:
            t0, first = time.time(), len(got)
        n += sum(1 for m in got if not m.error())
    rate = (n - first) / (time.time() - t0) if t0 else float("nan")
    cpu = ((proc_cpu(mock_pid) - mock0) * 1e6 / max(n, 1),
           (time.process_time() - me0) * 1e6 / max(n, 1))
    c.close()
    return rate, cpu


def proc_cpu(pid):
    """Seconds of CPU process pid has used (user + system, /proc): like
    redis_cpu, it does not grow while other work holds the cores."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def bound(port, cmd, runs=1):
    """redis-benchmark pipelining the write `cmd` (["AISLE.APPLY"] or
    ["EVALSHA", sha]): `runs` users a call,
    each a random one of 20,000 with one event under a fresh random event
    id (the script's arguments as profile.c lays them out: 12 settings,
    then per run the origin mark, the event and field counts, t_ref and
    t_max, the event's id, offset and production time, and the summed
    fields of a view: its item, seen, creator, category and brand). Returns
    events/s."""
    keys, tail = [], []
    now = str(int(time.time() * 1000))
    for r in range(runs):
        keys += ["aisle:u:{b%d__rand_int__}:%s" % (r, k) for k in ("profile", "events")]
        tail += ["", "1", "5", now, now, "e__rand_int__", "-1", now, "i:i__rand_int__", "1",
                 "s:i__rand_int__", now, "c:c1", "0.25", "g:cat", "1", "b:br", "1"]
    head = ["500", "100", "100", "1000", "1000", "10000", "0", now, "0", "604800",
            "604800000", "64"]
    argv = ["redis-benchmark", "-p", str(port), "-n", str(300000 // runs), "-P",
            str(max(1, 64 // runs)), "-c", "4", "-r", "20000", "-q"] + cmd + [
            str(2 * runs)] + keys + head + tail
    out = subprocess.run(argv, capture_output=True, text=True, timeout=300).stdout
    rates = re.findall(r"([\d.]+) requests per second", out)
    return float(rates[-1]) * runs if rates else float("nan")


def commandstats(port):
    """Calls per command since the last reset, from INFO commandstats."""
    out = {}
    for line in Resp(port).cmd("INFO", "commandstats").splitlines():
        m = re.match(r"cmdstat_([\w.|]+):calls=(\d+),usec=(\d+)", line)
        if m:
            out[m.group(1)] = (int(m.group(2)), int(m.group(3)))
    return out


def redis_cpu(port):
    """Seconds of CPU redis-server has used (INFO cpu, user + system): unlike
    its commandstats' microseconds, which are wall time inside each call,
    this does not grow when other work holds the cores."""
    info = dict(l.split(":", 1) for l in Resp(port).cmd("INFO", "cpu").splitlines()
                if ":" in l)
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def load():
    return "load average %.1f" % os.getloadavg()[0]


def write_stats(port, total):
    """The write's calls (AISLE.APPLY and AISLE.POPULAR, or the scripts'
    EVALSHA) and the commands run inside them, a signal, from INFO
    commandstats since the last reset."""
    stats = commandstats(port)
    outer = {k: v for k, v in stats.items() if k in ("aisle.apply", "aisle.popular", "evalsha")}
    inner = {k: v for k, v in stats.items()
             if k not in outer and k not in ("info", "config", "flushall")}
    calls = sum(c for c, _ in outer.values())
    usec = sum(u for _, u in outer.values())
    print("  redis: %d write calls (%s; %.1f signals a call), %.2f commands inside them a "
          "signal, %.1f us of Redis a signal"
          % (calls, ", ".join("%s %d" % kv for kv in sorted((k, c) for k, (c, _) in
                                                            outer.items())),
             total / max(calls, 1), sum(c for c, _ in inner.values()) / total, usec / total))
    top = sorted(((c, k) for k, (c, _) in inner.items()), reverse=True)
    if top:
        print("  inside, a signal: " + ", ".join("%s %.2f" % (k, c / total) for c, k in top[:8]))


def apply_sha(procs, brokers, redis_addr, port):
    """The apply script's SHA1, as a worker on a Redis without the module
    sends it (the script names two keys a run; popularity's names one)."""
    mon = subprocess.Popen(["redis-cli", "-p", str(port), "MONITOR"], stdout=subprocess.PIPE,
                           text=True)
    w = procs.ingest(brokers, redis_addr, ["--group", "bench-sha"])
    sha = None
    for line in mon.stdout:
        words = re.findall(r'"((?:[^"\\]|\\.)*)"', line)
        if len(words) > 2 and words[0] == "EVALSHA" and int(words[2]) % 2 == 0:
            sha = words[1]
            break
    mon.kill()
    procs.stop(w)
    return sha


def mock_with_catalog(procs, binary):
    """A Kafka mock cluster holding a catalog of 5,000 items; returns the
    process and its bootstrap address."""
    kafka, brokers = procs.start("kafka", [binary, "kafka-mock", "--partitions", str(PARTITIONS)],
                                 "bootstrap=")
    subprocess.run([binary, "synth", "--kafka-brokers", brokers,
                    "--items", "5000", "--users", "1", "--signals-per-user", "0"],
                   check=True, capture_output=True)
    return kafka, brokers


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rate", type=int, default=20000)
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--backlog", type=int, default=300000)
    ap.add_argument("--old", help="an older aisle binary whose runs follow the new one's")
    ap.add_argument("--old-module", help="the older binary's aisle_redis.so: its runs then "
                    "write into a Redis loading that one")
    a = ap.parse_args()
    _, ev = aisle_env.protos()
    procs = aisle_env.Procs()
    new = aisle_env.aisle_binary()
    try:
        # The module's Redis (AISLE.APPLY), and one without it (the script).
        _, redis_addr = procs.redis()
        port = int(redis_addr.split(":")[1])
        _, lua_addr = procs.redis(module=False)
        lua_port = int(lua_addr.split(":")[1])
        old_addr, old_port = redis_addr, port
        if a.old_module:
            old_port = aisle_env.free_port()
            procs.start("redis", ["redis-server", "--port", str(old_port), "--bind", "127.0.0.1",
                                  "--save", "", "--appendonly", "no", "--loadmodule",
                                  os.path.abspath(a.old_module)])
            aisle_env.wait_for(lambda: aisle_env._redis_ping(old_port), 10, "redis-server")
            old_addr = "127.0.0.1:%d" % old_port
        # A mock cluster for each delay run and for the backlog: the mock's
        # fetches slow down as its partitions fill with message sets (see
        # LINGER_MS), so a later run on the same one would be handicapped.
        for which, binary in [("new", new)] + ([("old", a.old)] if a.old else []):
            addr, p = (redis_addr, port) if which == "new" else (old_addr, old_port)
            kafka, brokers = mock_with_catalog(procs, new)
            offered, delays, acks, probes = delay_run(procs, ev, brokers, addr, p, a.rate,
                                                      a.seconds, binary)
            procs.stop(kafka)
            print("%s: offered load %.0f signals/s for %d s, %d probes, %d seen applied (%s)"
                  % (which, offered, a.seconds, probes, len(delays), load()))
            if delays:
                print("  event-to-profile delay: p50 %.1f ms, p99 %.1f ms, max %.1f ms; of it, "
                      "produce to the broker's ack (linger %d ms): p50 %.1f ms, p99 %.1f ms"
                      % (statistics.median(delays), pct(delays, 99), max(delays), LINGER_MS,
                         statistics.median(acks or [nan]), pct(acks or [nan], 99)))

        kafka, brokers = mock_with_catalog(procs, new)
        users = max(1, a.backlog // 20)
        subprocess.run([new, "synth", "--kafka-brokers", brokers,
                        "--items", "0", "--users", str(users), "--signals-per-user", "20"],
                       check=True, capture_output=True)
        total = end_offsets(brokers)
        print("backlog: %d signals in %d partitions" % (total, PARTITIONS))
        rate, (mock_us, client_us) = consume_bound(brokers, total, kafka.pid)
        print("stage bound, a bare consumer draining it: %.0f messages/s; CPU a message: "
              "the mock %.1f us, the consumer %.1f us (%s)" % (rate, mock_us, client_us, load()))
        best = 0
        kinds = [("new", new, redis_addr, port), ("new, script", new, lua_addr, lua_port)]
        if a.old:
            kinds.append(("old", a.old, old_addr, old_port))
        for workers in (1, 2):
            rates = {}
            for which, binary, addr, p in kinds:
                Resp(p).cmd("CONFIG", "RESETSTAT")
                cpu0 = redis_cpu(p)
                rate, worker_cpu = drain_run(procs, brokers, addr, p, workers, total, binary)
                rates[which] = rate
                if which == "new":
                    best = max(best, rate)
                print("%s: sustained with %d worker%s: %.0f signals/s (%s)%s"
                      % (which, workers, "s" if workers > 1 else "", rate, load(),
                         "" if which == "new" else "; new/%s %.2f" % (which, rates["new"] / rate)))
                redis_us, worker_us = (redis_cpu(p) - cpu0) * 1e6 / total, worker_cpu * 1e6 / total
                print("  CPU a signal: redis-server %.1f us, the worker%s %.1f us; stage bounds "
                      "at a core each: Redis %.0f signals/s, the worker%s %.0f"
                      % (redis_us, "s" if workers > 1 else "", worker_us, 1e6 / redis_us,
                         "s" if workers > 1 else "", 1e6 / worker_us))
                write_stats(p, total)

        sha = apply_sha(procs, brokers, lua_addr, lua_port)
        bounds = [("AISLE.APPLY", ["AISLE.APPLY"], port),
                  ("the script's EVALSHA", ["EVALSHA", sha], lua_port)]
        if a.old_module:
            bounds.append(("the old module's AISLE.APPLY", ["AISLE.APPLY"], old_port))
        b64s = {}
        for name, cmd, p in bounds:
            figs = []
            for runs in (1, 64):
                Resp(p).cmd("FLUSHALL")
                cpu0 = redis_cpu(p)
                b = bound(p, cmd, runs)
                figs += [b, (redis_cpu(p) - cpu0) * 1e6 / (300000 // runs * runs)]
            b64s[name] = figs[2]
            print("bound, redis-benchmark %s: %.0f signals/s with 1 user a call (-P 64), "
                  "%.0f with 64 users a call (as ingest sends them); Redis CPU a signal "
                  "%.1f us and %.1f us (%s)" % (name, figs[0], figs[2], figs[1], figs[3], load()))
            if name == "AISLE.APPLY":
                print("  the best sustained rate (new) is %.0f %% of it" % (100 * best / figs[2]))
            else:
                print("  AISLE.APPLY/%s at 64 users a call: %.2f"
                      % (name, b64s["AISLE.APPLY"] / figs[2]))
    finally:
        procs.close()


if __name__ == "__main__":
    main()
