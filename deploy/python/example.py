#!/usr/bin/python3
"""Aisle from an app backend, in a few lines: send a shopper's signals, get
their recommendations, and stream a shopping answer.

    python3 deploy/python/example.py --server 127.0.0.1:50051 \
        --kafka-brokers 127.0.0.1:9092 --user u00007 --item p000123
"""

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from aisle_client import AisleError, Client, ShopMode, Tracker  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--server", default="127.0.0.1:50051", help="aisle serve's gRPC address")
    ap.add_argument("--kafka-brokers", help="send a click first (needs aisle ingest running)")
    ap.add_argument("--user", default="u00007")
    ap.add_argument("--item", help="the item the user clicks")
    ap.add_argument("--query", default="a gift for a coffee fan under $40")
    a = ap.parse_args()

    if a.kafka_brokers and a.item:
        with Tracker(a.kafka_brokers) as track:
            track.click(a.user, a.item)
        time.sleep(0.2)  # ingest applies it within milliseconds

    with Client(a.server) as aisle:
        try:
            items = aisle.recommend(a.user, limit=5)
        except AisleError as e:
            print("recommend failed:", e, file=sys.stderr)
            return 1
        print("Recommended for %s (request %s):" % (a.user, aisle.last_request_id))
        for i, it in enumerate(items, 1):
            print("%d. %-40s %8s  %s" % (i, it.title, it.price, it.reasons[0]))
        print("\n%s?" % a.query)
        for chunk in aisle.shop(a.user, a.query, mode=ShopMode.FAST):
            print(chunk.text, end="", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
