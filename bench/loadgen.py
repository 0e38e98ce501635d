"""Drives the C load generator (bench/recommend/load.c, named by AISLE_LOAD)
for the bench scripts: one run as the dict of its key=value line, that
run's figures as a line, and the search for the highest offered rate whose
p99 stays under a bound, which is how the serving goals are stated
("p99 under 10 ms at 5,000 calls/s")."""

import os
import subprocess


def run(argv):
    """Runs the load generator with argv (after the binary); its figures
    as a dict of strings (calls_per_s, p50_ms, p99_ms, errors, ...)."""
    out = subprocess.run([os.environ["AISLE_LOAD"]] + argv, check=True,
                         stdout=subprocess.PIPE, text=True).stdout
    return dict(kv.split("=", 1) for kv in out.split())


def figures(r):
    """One run's calls/s and latency percentiles as a line."""
    return "%7.0f calls/s  p50 %6.2f ms  p99 %6.2f ms  p99.9 %6.2f ms  errors %s" % (
        float(r["calls_per_s"]), float(r["p50_ms"]), float(r["p99_ms"]), float(r["p999_ms"]),
        r["errors"])


def _holds(argv, rate, slo_ms, seconds):
    """Whether p99 stays under slo_ms at rate calls/s in two of three open-
    loop runs of seconds (one run's p99 rests on 1 % of a few thousand
    calls, which a single stall of a shared machine decides): the last
    passing run's figures, or None."""
    passed, failed, last = 0, 0, None
    while passed < 2 and failed < 2:
        r = run(argv + ["--rate", "%.0f" % rate, "--seconds", str(seconds),
                        "--inflight", "2000"])
        if float(r["p99_ms"]) < slo_ms and r["errors"] == "none":
            passed, last = passed + 1, r
        else:
            failed += 1
    return last if passed == 2 else None


def slo_rate(argv, ceiling, slo_ms, steps, seconds):
    """The highest offered rate (calls/s) at which p99 stays under slo_ms
    (in two of three runs), by bisection between 0 and ceiling (the same
    calls' closed-loop rate, which an open loop cannot beat) in steps steps:
    (rate, that rate's figures), or (0, None) when every rate tried missed.
    The rate is at most ceiling / 2^steps below the highest that holds."""
    lo, hi, best = 0.0, float(ceiling), None
    for _ in range(steps):
        rate = (lo + hi) / 2
        r = _holds(argv, rate, slo_ms, seconds)
        if r:
            lo, best = rate, r
        else:
            hi = rate
    return (lo, best) if best else (0, None)


def slo_line(rate, r):
    """slo_rate's answer as the figures' line."""
    return ("%7.0f calls/s sustained  (%s)" % (rate, figures(r).strip()) if r
            else "none: p99 over the bound at every rate tried")
