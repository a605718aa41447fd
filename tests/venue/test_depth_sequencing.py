"""Sequencing invariants of every diff-depth stream under random subscriptions and faults.

The venue is driven step by step (no sockets): market steps, depth ticks of each speed,
subscribe / unsubscribe on several connections, and injected depth faults. Each connection's
events are grouped per stream and per subscription period, and checked against Binance's
chaining rules (Spot ``U == previous u + 1``; futures ``pu == previous u``).
"""

from __future__ import annotations

import collections
import itertools

import orjson
import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scenarios.venue.config import VenueConfig
from scenarios.venue.faults import DepthFault
from scenarios.venue.feeds import DEPTH_SPEEDS
from scenarios.venue.instruments import Product
from scenarios.venue.server import Venue
from scenarios.venue.streams import Connection, StreamPath

STREAMS = [
    (Product.SPOT, "btcusdt@depth"),
    (Product.SPOT, "btcusdt@depth@100ms"),
    (Product.USDM, "btcusdt@depth"),
    (Product.USDM, "btcusdt@depth@500ms"),
    (Product.USDM, "btcusdt@depth@100ms"),
    (Product.USDM, "btcusdt@depth@0ms"),
    (Product.COINM, "btcusd_perp@depth@100ms"),
]
SYMBOLS = {Product.SPOT: "BTCUSDT", Product.USDM: "BTCUSDT", Product.COINM: "BTCUSD_PERP"}
SPEEDS = sorted({speed for table in DEPTH_SPEEDS.values() for speed in table if speed})

operations = st.lists(
    st.one_of(
        st.tuples(st.just("step"), st.integers(1, 3)),
        st.tuples(st.just("tick"), st.sampled_from(SPEEDS)),
        st.tuples(st.just("advance"), st.integers(1, 4)),
        st.tuples(st.just("subscribe"), st.integers(0, 2), st.integers(0, len(STREAMS) - 1)),
        st.tuples(st.just("unsubscribe"), st.integers(0, 2), st.integers(0, len(STREAMS) - 1)),
        st.tuples(
            st.just("fault"),
            st.sampled_from(list(SYMBOLS)),
            st.sampled_from(["skip", "repeat", "reorder"]),
        ),
    ),
    min_size=5,
    max_size=80,
)


def chain_breaks(product: Product, events: list[dict]) -> int:
    breaks = 0
    for previous, event in itertools.pairwise(events):
        if product is Product.SPOT:
            breaks += event["U"] != previous["u"] + 1
        else:
            breaks += event["pu"] != previous["u"]
    return breaks


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(script=operations)
async def test_depth_streams_chain_except_where_faults_break_them(script, autojump_clock) -> None:
    venue = Venue(VenueConfig(seed=21))
    connections: list[dict[Product, tuple[Connection, trio.MemoryReceiveChannel]]] = []
    for _ in range(3):
        per_product = {}
        for product in Product:
            send, receive = trio.open_memory_channel[bytes](100_000)
            connection = Connection(venue.hub, StreamPath(product, None, True, ()), send)
            venue.hub.attach(connection)
            per_product[product] = (connection, receive)
        connections.append(per_product)
    for product, stream in STREAMS:  # connection 0 watches everything, all along
        connections[0][product][0].subscribe([stream])
    epochs: collections.Counter[tuple[int, Product, str]] = collections.Counter()
    received: dict[tuple[int, Product, str, int], list[dict]] = collections.defaultdict(list)
    faults: collections.Counter[Product] = collections.Counter()

    def drain() -> None:
        for index, per_product in enumerate(connections):
            for product, (_, receive) in per_product.items():
                while True:
                    try:
                        message = orjson.loads(receive.receive_nowait())
                    except trio.WouldBlock:
                        break
                    key = (index, product, message["stream"])
                    received[(*key, epochs[key])].append(message["data"])

    for operation in script:
        kind = operation[0]
        now = venue.clock.now_ms()
        if kind == "step":
            for _ in range(operation[1]):
                for (product, symbol), market in venue.markets.items():
                    venue.feeds.on_market(product, symbol, market.step(now))
        elif kind == "tick":
            venue.feeds._depth_tick(operation[1])
        elif kind == "advance":
            for _ in range(operation[1]):
                for (product, symbol), market in venue.markets.items():
                    venue.feeds.on_market(product, symbol, market.step(now))
                for speed in SPEEDS:
                    venue.feeds._depth_tick(speed)
        elif kind in ("subscribe", "unsubscribe"):
            product, stream = STREAMS[operation[2]]
            connection, _ = connections[1 + operation[1] % 2][product]
            if kind == "subscribe" and stream not in connection.subscriptions:
                epochs[(operation[1], product, stream)] += 1
                connection.subscribe([stream])
            elif kind == "unsubscribe":
                connection.unsubscribe([stream])
        else:
            product, fault = operation[1], operation[2]
            venue.faults.depth[(product.value, SYMBOLS[product])] = DepthFault(**{fault: 1})
            faults[product] += 1
        drain()
        await trio.lowlevel.checkpoint()

    for (_, product, stream, _), events in received.items():
        for event in events:
            assert event["U"] <= event["u"]
            if stream.endswith("@0ms") and not faults[product]:
                assert event["U"] == event["u"], "an unthrottled event carries one update"
        breaks = chain_breaks(product, events)
        if not faults[product]:
            assert breaks == 0, (stream, events)
        else:
            # A skip or a repeat breaks the chain once; a reorder (B before A) three times:
            # before B, between B and A, and after A.
            assert breaks <= 3 * faults[product], (stream, events)


async def test_snapshots_land_both_between_and_inside_events(autojump_clock) -> None:
    """Clients must handle a snapshot that falls exactly on an event boundary and one that
    falls inside an event's range: over a realistic run the venue produces both."""
    venue = Venue(VenueConfig(seed=4))
    send, receive = trio.open_memory_channel[bytes](100_000)
    connection = Connection(venue.hub, StreamPath(Product.USDM, "public", True, ()), send)
    venue.hub.attach(connection)
    connection.subscribe(["btcusdt@depth@100ms"])
    market = venue.markets[(Product.USDM, "BTCUSDT")]
    snapshots = []
    for step in range(400):
        venue.feeds.on_market(Product.USDM, "BTCUSDT", market.step(venue.clock.now_ms()))
        if step % 3 == 0:
            venue.feeds._depth_tick(100)
        if step % 7 == 0:
            snapshots.append(market.depth(5)[0])
        await trio.sleep(0.01)
    events = []
    while True:
        try:
            events.append(orjson.loads(receive.receive_nowait())["data"])
        except trio.WouldBlock:
            break
    boundaries = {event["u"] for event in events}
    inside = [s for s in snapshots if any(e["U"] <= s < e["u"] for e in events)]
    between = [s for s in snapshots if s in boundaries]
    assert inside
    assert between
