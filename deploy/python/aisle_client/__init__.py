"""A small Python client for Aisle: typed helpers over the generated gRPC
stubs for Recommend (with filters, surfaces, queries and pages),
SimilarItems, GetProfile, DeleteProfile and Shop (streamed), and a Kafka
producer for sending user signals ("track").

    from aisle_client import Client, Tracker

    with Client("aisle-serve:50051", token=os.environ["AISLE_TOKEN"],
                tls_ca="/etc/aisle-tls/ca.crt") as aisle:
        for item in aisle.recommend("u00007", limit=5):
            print(item.title, item.price, item.reasons[0])
        page = aisle.recommend_page("u00007", limit=20, surface="home",
                                    filter={"max_price_cents": 5000})
        more = aisle.recommend_page("u00007", limit=20, surface="home",
                                    filter={"max_price_cents": 5000},
                                    page_token=page.next_page_token)
        for chunk in aisle.shop("u00007", "a gift for a coffee fan under $40"):
            print(chunk.text, end="", flush=True)

    with Tracker("kafka-0:9092") as track:
        track.click("u00007", "p000123")

Needs grpcio, protobuf and, for Tracker, confluent-kafka (Debian:
python3-grpcio python3-protobuf python3-confluent-kafka). The message and
stub modules under _gen are generated from proto/ by generate.sh; the raw
messages are in aisle_client.pb (aisle.v1) and aisle_client.events."""

import dataclasses
import enum
import os
import sys
import time
import uuid
from typing import Iterator, List, Optional, Sequence

# The generated modules import each other as aisle.v1.*, so their folder
# goes on the path once.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "_gen"))

import grpc  # noqa: E402

from aisle.v1 import aisle_pb2 as pb  # noqa: E402
from aisle.v1 import aisle_pb2_grpc as pb_grpc  # noqa: E402
from aisle.v1 import events_pb2 as events  # noqa: E402

__all__ = ["Client", "Tracker", "Item", "Page", "Creator", "Profile", "Weighted", "ShopChunk",
           "Agent", "ShopMode", "AisleError", "pb", "events"]


class AisleError(Exception):
    """A call that failed: code is the grpc.StatusCode (UNAVAILABLE when the
    server or its Redis is down, INVALID_ARGUMENT for a bad request)."""

    def __init__(self, code: grpc.StatusCode, message: str):
        super().__init__("%s: %s" % (code.name, message))
        self.code = code
        self.message = message


@dataclasses.dataclass(frozen=True)
class Item:
    """A recommended product with the catalog facts and why it is there."""
    item_id: str
    score: float
    reasons: List[str]
    title: str
    creator_id: str
    category: str
    price_cents: int
    brand: str
    sources: List[str] = dataclasses.field(default_factory=list)  # "profile", "query" ...
    creator_name: str = ""

    @property
    def price(self) -> str:
        return "$%d.%02d" % divmod(self.price_cents, 100)

    @classmethod
    def _of(cls, m) -> "Item":
        return cls(m.item_id, m.score, list(m.reasons), m.title, m.creator_id, m.category,
                   m.price_cents, m.brand, list(getattr(m, "sources", [])),
                   getattr(m, "creator_name", ""))


@dataclasses.dataclass(frozen=True)
class Creator:
    creator_id: str
    name: str
    score: float
    reasons: List[str]


@dataclasses.dataclass(frozen=True)
class Page:
    """One page of Recommend or SimilarItems. Pass next_page_token back (with
    the same request otherwise) for the next page, which never repeats an
    item of this session's earlier pages; "" when there is none."""
    items: List[Item]
    creators: List[Creator]
    next_page_token: str
    request_id: str
    degraded: bool          # not personalized (the profile store is down)
    degraded_reason: str
    assignments: List[str]  # "layer/experiment=variant" for the user


@dataclasses.dataclass(frozen=True)
class Weighted:
    id: str
    weight: float


@dataclasses.dataclass(frozen=True)
class Profile:
    """What Aisle knows of a user: decayed weights, heaviest first."""
    user_id: str
    items: List[Weighted]
    creators: List[Weighted]
    categories: List[Weighted]
    brands: List[Weighted]
    dismissed: List[Weighted]
    last_active_ms: int

    @property
    def exists(self) -> bool:
        return bool(self.last_active_ms or self.items or self.dismissed)


@dataclasses.dataclass(frozen=True)
class Agent:
    agent: str
    summary: str
    item_ids: List[str]
    used: bool


@dataclasses.dataclass(frozen=True)
class ShopChunk:
    """One piece of a Shop answer: the first carries the products (and in
    contemplating mode the sub-agents), later ones text; the last has done."""
    text: str
    items: List[Item]
    agents: List[Agent]
    done: bool
    request_id: str


class ShopMode(enum.IntEnum):
    FAST = pb.SHOP_MODE_FAST
    CONTEMPLATING = pb.SHOP_MODE_CONTEMPLATING


def _read(path: Optional[str]) -> Optional[bytes]:
    if not path:
        return None
    with open(path, "rb") as f:
        return f.read()


def _channel(target, tls_ca, tls_cert, tls_key, server_name) -> grpc.Channel:
    if not tls_ca:
        return grpc.insecure_channel(target)
    creds = grpc.ssl_channel_credentials(root_certificates=_read(tls_ca),
                                         private_key=_read(tls_key),
                                         certificate_chain=_read(tls_cert))
    opts = [("grpc.ssl_target_name_override", server_name)] if server_name else []
    return grpc.secure_channel(target, creds, options=opts)


def _weighted(ws) -> List[Weighted]:
    return [Weighted(w.id, w.weight) for w in ws]


class Client:
    """The Recommender service at target ("HOST:PORT"); timeout is each
    call's deadline in seconds. token is a bearer token from serve's
    --tokens-file (app or admin role); tls_ca the PEM file of the roots to
    trust (TLS; without it, plaintext), tls_cert and tls_key a client
    certificate for a server that requires one, server_name the name its
    certificate carries when it is not target's host. Use as a context
    manager, or close()."""

    def __init__(self, target: str, timeout: float = 5.0,
                 channel: Optional[grpc.Channel] = None, token: Optional[str] = None,
                 tls_ca: Optional[str] = None, tls_cert: Optional[str] = None,
                 tls_key: Optional[str] = None, server_name: Optional[str] = None):
        self._channel = channel or _channel(target, tls_ca, tls_cert, tls_key, server_name)
        self._stub = pb_grpc.RecommenderStub(self._channel)
        self._metadata = [("authorization", "Bearer " + token)] if token else None
        self.timeout = timeout
        self.last_request_id = ""

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._channel.close()

    def _call(self, method, request):
        try:
            return method(request, timeout=self.timeout, metadata=self._metadata)
        except grpc.RpcError as e:
            raise AisleError(e.code(), e.details()) from None

    def recommend(self, user_id: str, limit: int = 10, **kw) -> List[Item]:
        """Up to limit items, best first (a user with no profile gets
        popular items); kw as recommend_page. The call's request id is kept
        in last_request_id."""
        return self.recommend_page(user_id, limit, **kw).items

    def recommend_page(self, user_id: str, limit: int = 10, surface: str = "",
                       query: str = "", filter: Optional[dict] = None,
                       context_item_id: str = "", query_vector: Sequence[float] = (),
                       page_token: str = "") -> Page:
        """One page: surface names the pipeline settings ("home",
        "product_page", "cart"; "" the plain ranking), query a shopper's
        words, filter the fields of aisle.v1.Filter as a dict
        ({"max_price_cents": 5000, "categories": ["coffee"]}),
        context_item_id the product page the shopper is on, query_vector a
        vector in the catalog's space (an image or voice model's)."""
        req = pb.RecommendRequest(user_id=user_id, limit=limit, surface=surface, query=query,
                                  filter=pb.Filter(**(filter or {})),
                                  context_item_id=context_item_id,
                                  query_vector=list(query_vector), page_token=page_token)
        return self._page(self._call(self._stub.Recommend, req))

    def similar(self, item_id: str, user_id: str = "", limit: int = 10,
                filter: Optional[dict] = None, page_token: str = "") -> Page:
        """Items like item_id (NOT_FOUND when the catalog lacks it); with
        user_id, that user's seen items are left out."""
        req = pb.SimilarItemsRequest(item_id=item_id, user_id=user_id, limit=limit,
                                     filter=pb.Filter(**(filter or {})), page_token=page_token)
        return self._page(self._call(self._stub.SimilarItems, req))

    def _page(self, r) -> Page:
        self.last_request_id = r.request_id
        return Page([Item._of(m) for m in r.items],
                    [Creator(c.creator_id, c.name, c.score, list(c.reasons)) for c in r.creators],
                    r.next_page_token, r.request_id, r.degraded, r.degraded_reason,
                    ["%s/%s=%s" % (a.layer, a.experiment, a.variant) for a in r.assignments])

    def profile(self, user_id: str) -> Profile:
        p = self._call(self._stub.GetProfile, pb.GetProfileRequest(user_id=user_id))
        return Profile(p.user_id, _weighted(p.items), _weighted(p.creators),
                       _weighted(p.categories), _weighted(p.brands), _weighted(p.dismissed),
                       p.last_active_ms)

    def delete_profile(self, user_id: str) -> bool:
        """Erases everything Aisle keeps for the user; whether there was anything."""
        return self._call(self._stub.DeleteProfile,
                          pb.DeleteProfileRequest(user_id=user_id)).existed

    def shop(self, user_id: str, query: str, limit: int = 5,
             mode: ShopMode = ShopMode.FAST) -> Iterator[ShopChunk]:
        """The answer's chunks as the server writes them."""
        req = pb.ShopRequest(user_id=user_id, query=query, limit=limit, mode=int(mode))
        try:
            for c in self._stub.Shop(req, timeout=self.timeout, metadata=self._metadata):
                if c.request_id:
                    self.last_request_id = c.request_id
                yield ShopChunk(c.text, [Item._of(m) for m in c.items],
                                [Agent(a.agent, a.summary, list(a.item_ids), a.used)
                                 for a in c.agents], c.done, c.request_id)
        except grpc.RpcError as e:
            raise AisleError(e.code(), e.details()) from None


class Tracker:
    """Sends user signals to aisle.signals (key: the user id, so one user's
    signals stay in order); ingest applies them to the profile within
    milliseconds. Delivery is confirmed by flush() (also on close)."""

    KINDS = {"view": events.VIEW, "click": events.CLICK, "add_to_cart": events.ADD_TO_CART,
             "purchase": events.PURCHASE, "like": events.LIKE,
             "follow_creator": events.FOLLOW_CREATOR, "dismiss": events.DISMISS}

    def __init__(self, brokers: str, topic: str = "aisle.signals", **kafka_config):
        from confluent_kafka import Producer
        conf = {"bootstrap.servers": brokers, "enable.idempotence": True, "linger.ms": 5}
        conf.update(kafka_config)
        self._producer = Producer(conf)
        self.topic = topic

    def __enter__(self) -> "Tracker":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def track(self, user_id: str, kind: str, item_id: str = "", creator_id: str = "",
              weight: float = 0.0, event_id: Optional[str] = None,
              ts_ms: Optional[int] = None) -> str:
        """Queues one signal; returns its event id (replays with the same id
        count once). kind is one of Tracker.KINDS."""
        eid = event_id or uuid.uuid4().hex
        s = events.Signal(event_id=eid, user_id=user_id, kind=self.KINDS[kind], item_id=item_id,
                          creator_id=creator_id, weight=weight,
                          ts_ms=ts_ms if ts_ms is not None else int(time.time() * 1000))
        self._producer.produce(self.topic, key=user_id, value=s.SerializeToString())
        self._producer.poll(0)
        return eid

    def view(self, user_id: str, item_id: str) -> str:
        return self.track(user_id, "view", item_id)

    def click(self, user_id: str, item_id: str) -> str:
        return self.track(user_id, "click", item_id)

    def purchase(self, user_id: str, item_id: str) -> str:
        return self.track(user_id, "purchase", item_id)

    def dismiss(self, user_id: str, item_id: str) -> str:
        return self.track(user_id, "dismiss", item_id)

    def flush(self, timeout: float = 10.0) -> int:
        """Waits for delivery; returns how many signals are still queued."""
        return self._producer.flush(timeout)

    def close(self) -> None:
        self.flush()
