#!/usr/bin/python3
"""A gRPC load generator that varies the request per call (h2load sends one
body). P processes, each with its own channel and T threads making
blocking calls back to back (closed loop), each call for a user drawn at
random from u00000..u(N-1). Requests are built before the clock starts,
one per call, so the generator's own cost is one send and one receive.

As a module: run(addr, make_request, method, calls, procs, threads) ->
(calls/s, sorted latencies in ms, errors)."""

import multiprocessing
import random
import threading
import time

import grpc


def _worker(addr, method, bodies, threads, out, go):
    ch = grpc.insecure_channel(addr)
    call = ch.unary_unary(method, request_serializer=lambda b: b,
                          response_deserializer=lambda b: b)
    call(bodies[0], timeout=10)  # connect before the clock starts
    lat, errors, lock = [], [0], threading.Lock()
    per = [bodies[i::threads] for i in range(threads)]

    def loop(mine):
        local, bad = [], 0
        for b in mine:
            t = time.perf_counter()
            try:
                call(b, timeout=10)
            except grpc.RpcError:
                bad += 1
            local.append((time.perf_counter() - t) * 1000)
        with lock:
            lat.extend(local)
            errors[0] += bad

    ts = [threading.Thread(target=loop, args=(m,)) for m in per]
    out.put(("ready", None))
    go.wait()
    start = time.perf_counter()
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    out.put(("done", (start, time.perf_counter(), lat, errors[0])))
    ch.close()


def run(addr, make_request, method, calls, procs, threads, seed=1):
    """make_request(rng) -> bytes of one request."""
    rng = random.Random(seed)
    bodies = [make_request(rng) for _ in range(calls)]
    # Spawned, not forked: a gRPC channel does not survive fork.
    ctx = multiprocessing.get_context("spawn")
    q, go = ctx.Queue(), ctx.Event()
    ps = [ctx.Process(target=_worker, args=(addr, method, bodies[i::procs], threads, q, go))
          for i in range(procs)]
    for p in ps:
        p.start()
    for _ in ps:
        assert q.get(timeout=60)[0] == "ready"
    go.set()
    starts, ends, lat, errors = [], [], [], 0
    for _ in ps:
        kind, (s, e, l, bad) = q.get(timeout=600)
        starts.append(s)
        ends.append(e)
        lat.extend(l)
        errors += bad
    for p in ps:
        p.join()
    lat.sort()
    return calls / (max(ends) - min(starts)), lat, errors


def pct(sorted_xs, p):
    return sorted_xs[min(len(sorted_xs) - 1, int(len(sorted_xs) * p / 100))]
