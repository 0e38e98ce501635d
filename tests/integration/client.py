#!/usr/bin/python3
"""A small real gRPC client for Aisle: prints a user's recommendations.

    /usr/bin/python3 tests/integration/client.py HOST:PORT USER_ID [LIMIT]
"""
import sys

import grpc

import aisle_env


def main():
    if len(sys.argv) not in (3, 4):
        print(__doc__.strip(), file=sys.stderr)
        return 2
    pb, _ = aisle_env.protos()
    ch = grpc.insecure_channel(sys.argv[1])
    call = ch.unary_unary("/aisle.v1.Recommender/Recommend",
                          request_serializer=pb.RecommendRequest.SerializeToString,
                          response_deserializer=pb.RecommendResponse.FromString)
    limit = int(sys.argv[3]) if len(sys.argv) == 4 else 5
    try:
        resp = call(pb.RecommendRequest(user_id=sys.argv[2], limit=limit), timeout=5)
    except grpc.RpcError as e:
        print("error: %s: %s" % (e.code().name, e.details()), file=sys.stderr)
        return 1
    print("request %s" % resp.request_id)
    for i, it in enumerate(resp.items, 1):
        print("%d. %s  %s  $%.2f  score %.3f" % (i, it.item_id, it.title,
                                                it.price_cents / 100, it.score))
        for r in it.reasons:
            print("     - " + r)
    return 0


if __name__ == "__main__":
    sys.exit(main())
