"""The instruments actor as a fold: requests out, answers in, instrument events out."""

from __future__ import annotations

import copy
from decimal import Decimal
from typing import Any

import orjson

from actors.config import AccountType, ClientConfig
from actors.instruments import NAME, InstrumentsActor
from events.base import Envelope, Event
from events.connectivity import RestRequest, RestResponse
from events.market import (
    Instrument,
    InstrumentSkipped,
    InstrumentStatus,
    InstrumentsUnavailable,
    MarketStatus,
)
from events.system import ScheduleTimer, SessionStarted, TimerFired
from scenarios.venue.instruments import Product, default_instruments, exchange_info_json

NOW_MS = 1_764_080_000_000
PRODUCTS = {
    AccountType.SPOT: Product.SPOT,
    AccountType.USDT_FUTURES: Product.USDM,
    AccountType.COIN_FUTURES: Product.COINM,
}


def body(account_type: AccountType) -> dict[str, Any]:
    return exchange_info_json(PRODUCTS[account_type], default_instruments(NOW_MS), [], NOW_MS)


class Fold:
    """Feeds envelopes to the actor the way its runner does."""

    def __init__(self, *clients: ClientConfig) -> None:
        self.actor = InstrumentsActor(clients=clients)
        self.seq = 0

    def feed(self, event: Event) -> list[Event]:
        self.seq += 1
        envelope = Envelope(seq=self.seq, ts_ns=self.seq, source="x", cause=None, event=event)
        return list(self.actor.handle(envelope))

    def start(self) -> list[Event]:
        return self.feed(SessionStarted(session_id="s", config={}, versions={}, pid=1))

    def answer(self, request: RestRequest, payload: Any, outcome: str = "ok") -> list[Event]:
        return self.feed(
            RestResponse(
                client=request.client,
                call_id=request.call_id,
                method=request.method,
                path=request.path,
                outcome=outcome,
                status=200 if outcome == "ok" else 503,
                body=orjson.dumps(payload).decode() if outcome == "ok" else "",
                message="" if outcome == "ok" else "Service Unavailable",
            )
        )


def client(name: str, account_type: AccountType, **options: Any) -> ClientConfig:
    return ClientConfig(name=name, account_type=account_type, **options)


def of(kind: type, events: list[Event]) -> list[Any]:
    return [event for event in events if isinstance(event, kind)]


def test_start_asks_every_client_and_schedules_reload_and_status_polls() -> None:
    fold = Fold(
        client("spot", AccountType.SPOT),
        client("usdm", AccountType.USDT_FUTURES, instrument_status_poll_secs=0),
        client("coinm", AccountType.COIN_FUTURES, update_instruments_interval_mins=0),
    )
    out = fold.start()
    assert [(r.client, r.path) for r in of(RestRequest, out)] == [
        ("spot", "/api/v3/exchangeInfo"),
        ("usdm", "/fapi/v1/exchangeInfo"),
        ("coinm", "/dapi/v1/exchangeInfo"),
    ]
    timers = {(t.name, t.interval_ms) for t in of(ScheduleTimer, out)}
    # spot: reload and status poll are both hourly: one exchangeInfo answer serves both.
    assert timers == {
        ("reload:spot", 3_600_000),
        ("reload:usdm", 3_600_000),
        ("status:coinm", 3_600_000),
    }
    assert all(t.owner == NAME for t in of(ScheduleTimer, out))


def test_instruments_of_each_product_then_only_changes() -> None:
    fold = Fold(
        client("spot", AccountType.SPOT),
        client("usdm", AccountType.USDT_FUTURES),
        client("coinm", AccountType.COIN_FUTURES),
    )
    requests = of(RestRequest, fold.start())
    loaded: dict[str, list[Instrument]] = {}
    for request in requests:
        out = fold.answer(request, body(fold.actor.clients[request.client].config.account_type))
        loaded[request.client] = of(Instrument, out)
        assert not of(InstrumentStatus, out)  # the first answer seeds silently
    assert {i.instrument_id for i in loaded["spot"]} >= {"BTCUSDT.BINANCE"}
    assert any(i.instrument_id.endswith("-PERP.BINANCE") for i in loaded["usdm"])
    assert all(i.inverse for i in loaded["coinm"])
    # A reload with nothing changed publishes nothing; a changed tick size republishes one.
    reload = fold.feed(TimerFired(owner=NAME, name="reload:spot", count=1))
    (again,) = of(RestRequest, reload)
    assert fold.answer(again, body(AccountType.SPOT)) == []
    changed = copy.deepcopy(body(AccountType.SPOT))
    first = changed["symbols"][0]
    for rule in first["filters"]:
        if rule["filterType"] == "PRICE_FILTER":
            rule["tickSize"] = "0.10000000"
    first["status"] = "HALT"
    (poll,) = of(RestRequest, fold.feed(TimerFired(owner=NAME, name="status:spot", count=1)))
    out = fold.answer(poll, changed)
    (instrument,) = of(Instrument, out)
    assert instrument.tick_size == Decimal("0.10000000")
    (status,) = of(InstrumentStatus, out)
    assert (status.previous, status.status) == (MarketStatus.TRADING, MarketStatus.HALT)
    # A symbol gone from exchangeInfo is reported once.
    gone = copy.deepcopy(changed)
    symbol = gone["symbols"].pop(0)["symbol"]
    (poll,) = of(RestRequest, fold.feed(TimerFired(owner=NAME, name="status:spot", count=2)))
    (status,) = of(InstrumentStatus, fold.answer(poll, gone))
    assert status.instrument_id == f"{symbol}.BINANCE"
    assert status.status is MarketStatus.NOT_AVAILABLE_FOR_TRADING


def test_a_failed_load_is_reported_and_retried() -> None:
    fold = Fold(client("spot", AccountType.SPOT, update_instruments_interval_mins=0))
    (request,) = of(RestRequest, fold.start())
    out = fold.answer(request, None, outcome="unknown")
    (unavailable,) = of(InstrumentsUnavailable, out)
    assert "Service Unavailable" in unavailable.reason
    (retry,) = of(ScheduleTimer, out)
    assert retry.name == "retry:spot"
    (again,) = of(RestRequest, fold.feed(TimerFired(owner=NAME, name="retry:spot", count=1)))
    assert of(Instrument, fold.answer(again, body(AccountType.SPOT)))
    # Not JSON at all: the same report, nothing raised.
    (poll,) = of(RestRequest, fold.feed(TimerFired(owner=NAME, name="status:spot", count=1)))
    out = fold.feed(
        RestResponse(
            client="spot",
            call_id=poll.call_id,
            method="GET",
            path=poll.path,
            outcome="ok",
            status=200,
            body="<html>maintenance</html>",
        )
    )
    assert of(InstrumentsUnavailable, out)


def test_a_symbol_that_cannot_be_parsed_is_skipped_once() -> None:
    fold = Fold(client("spot", AccountType.SPOT, log_warnings=False))
    (request,) = of(RestRequest, fold.start())
    broken = copy.deepcopy(body(AccountType.SPOT))
    broken["symbols"][0]["filters"] = []
    out = fold.answer(request, broken)
    (skip,) = of(InstrumentSkipped, out)
    assert skip.reason == "no PRICE_FILTER"
    (poll,) = of(RestRequest, fold.feed(TimerFired(owner=NAME, name="reload:spot", count=1)))
    assert of(InstrumentSkipped, fold.answer(poll, broken)) == []


def test_commission_rates_replace_the_table_per_symbol() -> None:
    fold = Fold(client("usdm", AccountType.USDT_FUTURES, query_commission_rates=True))
    (request,) = of(RestRequest, fold.start())
    out = fold.answer(request, body(AccountType.USDT_FUTURES))
    instruments = of(Instrument, out)
    assert {i.fee_source for i in instruments} == {"table"}
    rate_requests = [r for r in of(RestRequest, out) if r.path == "/fapi/v1/commissionRate"]
    assert [r.params["symbol"] for r in rate_requests] == [i.symbol for i in instruments]
    first, second = rate_requests[:2]
    answer = {
        "symbol": first.params["symbol"],
        "makerCommissionRate": "0.000180",
        "takerCommissionRate": "0.000450",
    }
    (updated,) = of(Instrument, fold.answer(first, answer))
    assert (updated.maker_fee, updated.taker_fee) == (Decimal("0.000180"), Decimal("0.000450"))
    assert updated.fee_source == "commission_rate"
    assert fold.answer(second, None, outcome="failed") == []  # the table's fees stand


def test_other_owners_timers_and_other_answers_are_ignored() -> None:
    fold = Fold(client("spot", AccountType.SPOT))
    fold.start()
    assert fold.feed(TimerFired(owner="someone", name="reload:spot", count=1)) == []
    assert fold.feed(TimerFired(owner=NAME, name="reload:nobody", count=1)) == []
    stray = RestResponse(
        client="spot", call_id="other", method="GET", path="/x", outcome="ok", status=200
    )
    assert fold.feed(stray) == []


def test_an_odd_filter_type_is_ignored_not_raised() -> None:
    fold = Fold(client("usdm", AccountType.USDT_FUTURES, log_warnings=False))
    (request,) = of(RestRequest, fold.start())
    odd = copy.deepcopy(body(AccountType.USDT_FUTURES))
    odd["symbols"][0]["filters"].append({"filterType": ["PRICE_FILTER"]})
    out = fold.answer(request, odd)
    assert len(of(Instrument, out)) == len(odd["symbols"])
