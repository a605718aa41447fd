"""The wire format: round trips for every event class, strictness, tags, upcasting."""

from __future__ import annotations

import re
import typing
from decimal import Decimal
from pathlib import Path

import attrs
import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from events import upcast as upcast_module
from events.base import Envelope, Event
from events.codec import DecodeError, default_codec
from events.demo import SyntheticPrice
from events.registry import BY_TAG, EVENT_CLASSES, _index, check_selectors, tag_matches
from events.system import TimerFired

GOLDEN = Path(__file__).with_name("golden_records.jsonl")

finite_decimals = st.decimals(allow_nan=False, allow_infinity=False, places=8)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)


def _strategy_for(annotation: typing.Any) -> st.SearchStrategy:
    if annotation is Decimal:
        return finite_decimals
    if typing.get_origin(annotation) is dict:
        _, value = typing.get_args(annotation)
        if value is str:
            return st.dictionaries(st.text(max_size=8), st.text(max_size=8), max_size=4)
        return st.dictionaries(st.text(max_size=8), json_values, max_size=4)
    if typing.get_origin(annotation) in (typing.Union, __import__("types").UnionType):
        return st.one_of([_strategy_for(arg) for arg in typing.get_args(annotation)])
    if annotation is type(None):
        return st.none()
    if typing.get_origin(annotation) is tuple:
        args = typing.get_args(annotation)
        if len(args) == 2 and args[1] is Ellipsis:
            return st.lists(_strategy_for(args[0]), max_size=3).map(tuple)
        return st.tuples(*(_strategy_for(arg) for arg in args))
    if attrs.has(annotation):
        return event_strategy(annotation)
    if annotation is int:
        return st.integers(-(2**63), 2**63 - 1)
    if annotation is float:
        return st.floats(allow_nan=False, allow_infinity=False)
    return st.from_type(annotation)


def event_strategy(cls: type[Event]) -> st.SearchStrategy[Event]:
    hints = typing.get_type_hints(cls)
    fields = {f.name: _strategy_for(hints[f.name]) for f in attrs.fields(cls)}
    return st.builds(cls, **fields)


any_event = st.one_of([event_strategy(cls) for cls in EVENT_CLASSES])
envelopes = st.builds(
    Envelope,
    seq=st.integers(1, 2**63 - 1),
    ts_ns=st.integers(0, 2**63 - 1),
    source=st.text(min_size=1, max_size=16),
    cause=st.none() | st.integers(1, 2**63 - 1),
    event=any_event,
)


@given(envelopes)
def test_every_event_round_trips(envelope: Envelope) -> None:
    codec = default_codec()
    payload = codec.encode(envelope)
    assert codec.decode(payload) == envelope


@given(envelopes)
def test_bus_assembly_is_byte_identical_to_the_record_shape(envelope: Envelope) -> None:
    codec = default_codec()
    body = codec.encode_event(envelope.event)
    assembled = codec.assemble(
        envelope.seq,
        envelope.ts_ns,
        orjson.dumps(envelope.source),
        envelope.cause,
        type(envelope.event).VERSION,
        body,
    )
    assert assembled == codec.encode(envelope)


def test_record_shape_matches_the_design() -> None:
    codec = default_codec()
    envelope = Envelope(
        seq=7,
        ts_ns=1_700_000_000_000_000_000,
        source="synthetic-market",
        cause=5,
        event=SyntheticPrice(symbol="BTCUSDT", price=Decimal("50000.10"), step=3),
    )
    assert orjson.loads(codec.encode(envelope)) == {
        "seq": 7,
        "ts_ns": 1_700_000_000_000_000_000,
        "source": "synthetic-market",
        "cause": 5,
        "v": 1,
        "event": {"type": "demo.price", "symbol": "BTCUSDT", "price": "50000.10", "step": 3},
    }


def test_golden_records_still_decode_and_encode_identically() -> None:
    """Stored bytes are a contract: today's code must read them and write the same bytes."""
    codec = default_codec()
    lines = GOLDEN.read_bytes().splitlines()
    tags = set()
    for line in lines:
        envelope = codec.decode(line)
        tags.add(envelope.event.TAG)
        assert codec.encode(envelope) == line
    assert tags == set(BY_TAG), "every registered tag needs a golden record"


def test_a_float_where_money_belongs_is_an_error() -> None:
    codec = default_codec()
    good = codec.encode(
        Envelope(
            seq=1,
            ts_ns=1,
            source="s",
            cause=None,
            event=SyntheticPrice(symbol="X", price=Decimal("1.5"), step=1),
        )
    )
    with pytest.raises(DecodeError, match="Decimal must be given as a string"):
        codec.decode(good.replace(b'"1.5"', b"1.5"))
    with pytest.raises(TypeError, match="money must be a Decimal"):
        codec.encode_event(SyntheticPrice(symbol="X", price=1.5, step=1))  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", ["NaN", "Infinity", "-Infinity", "sNaN"])
def test_non_finite_decimals_are_rejected(bad: str) -> None:
    codec = default_codec()
    with pytest.raises(DecodeError, match="finite"):
        codec.event_from_dict({"type": "demo.price", "symbol": "X", "price": bad, "step": 1})


def test_unknown_types_and_malformed_records_fail_clearly() -> None:
    codec = default_codec()
    with pytest.raises(DecodeError, match=r"unknown event type 'nope\.nope'"):
        codec.event_from_dict({"type": "nope.nope"})
    with pytest.raises(DecodeError, match="malformed journal record"):
        codec.decode(b'{"seq": 1}')
    with pytest.raises(DecodeError, match="malformed"):
        codec.decode(b"\xff\x00")
    with pytest.raises(TypeError, match="not a registered event class"):
        codec.event_to_dict(Event())


def test_tags_are_unique_dotted_and_checked() -> None:
    assert len(BY_TAG) == len(EVENT_CLASSES)

    @attrs.frozen(kw_only=True)
    class Twin(Event):
        TAG = "timer.fired"

    with pytest.raises(AssertionError, match="used by both"):
        _index((TimerFired, Twin))

    @attrs.frozen(kw_only=True)
    class Shouty(Event):
        TAG = "Timer"

    with pytest.raises(AssertionError, match="dotted lowercase"):
        _index((Shouty,))


def test_selectors() -> None:
    assert tag_matches("timer.fired", ("timer.",))
    assert tag_matches("timer.fired", ("timer.fired",))
    assert not tag_matches("timer.fired", ("timer",))
    assert not tag_matches("timer.fired", ("actor.",))
    check_selectors(("timer.", "demo.price"))
    with pytest.raises(ValueError, match="matches no event type"):
        check_selectors(("timer",))


def test_upcasting_rewrites_old_versions_in_steps(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(upcast_module, "_STEPS", {})

    @upcast_module.upcaster("demo.price", 1)
    def rename(event: dict) -> dict:
        event = dict(event)
        event["symbol"] = event.pop("pair")
        return event

    @upcast_module.upcaster("demo.price", 2)
    def add_step(event: dict) -> dict:
        return {**event, "step": 0}

    stored = {"type": "demo.price", "pair": "BTCUSDT", "price": "1"}
    assert upcast_module.upcast("demo.price", 1, 3, stored) == {
        "type": "demo.price",
        "symbol": "BTCUSDT",
        "price": "1",
        "step": 0,
    }
    with pytest.raises(upcast_module.UpcastError, match="only up to version 3"):
        upcast_module.upcast("demo.price", 4, 3, stored)
    with pytest.raises(upcast_module.UpcastError, match="no upcaster"):
        upcast_module.upcast("timer.fired", 1, 2, {})
    with pytest.raises(AssertionError, match="two upcasters"):
        upcast_module.upcaster("demo.price", 1)(rename)


def test_the_codec_upcasts_before_structuring(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(upcast_module, "_STEPS", {})
    monkeypatch.setattr(SyntheticPrice, "VERSION", 2)

    @upcast_module.upcaster("demo.price", 1)
    def add_step(event: dict) -> dict:
        return {**event, "step": -1}

    old = (
        b'{"seq":1,"ts_ns":2,"source":"s","cause":null,"v":1,'
        b'"event":{"type":"demo.price","symbol":"X","price":"3"}}'
    )
    envelope = default_codec().decode(old)
    assert envelope.event == SyntheticPrice(symbol="X", price=Decimal("3"), step=-1)


@pytest.mark.parametrize(
    ("stored", "message"),
    [
        ({"owner": "a", "name": "t", "count": "5"}, "expected int, got str"),
        ({"owner": "a", "name": "t", "count": 5.7}, "expected int, got float"),
        ({"owner": "a", "name": "t", "count": True}, "expected int, got bool"),
        ({"owner": 5, "name": "t", "count": 1}, "expected str, got int"),
        ({"owner": "a", "name": "t"}, "missing field 'count'"),
        ({"owner": "a", "name": "t", "count": 1, "extra": 1}, "unexpected fields ['extra']"),
    ],
)
def test_every_field_is_decoded_strictly(stored: dict, message: str) -> None:
    with pytest.raises(DecodeError, match=re.escape(message)):
        default_codec().event_from_dict({"type": "timer.fired", **stored})


def test_booleans_are_not_coerced() -> None:
    stored = {"type": "session.stopped", "session_id": "s", "reason": "r", "clean": "false"}
    with pytest.raises(DecodeError, match="expected bool, got str"):
        default_codec().event_from_dict(stored)


@pytest.mark.parametrize(
    ("event", "message"),
    [
        (TimerFired(owner="a", name="t", count="5"), "int field holds str"),
        (TimerFired(owner="a", name="t", count=True), "int field holds bool"),
        (SyntheticPrice(symbol="X", price=Decimal("NaN"), step=1), "must be finite"),
        (SyntheticPrice(symbol="X", price=Decimal("-Infinity"), step=1), "must be finite"),
    ],
)
def test_what_could_not_be_read_back_is_never_written(event: Event, message: str) -> None:
    with pytest.raises((TypeError, ValueError), match=message):
        default_codec().encode_event(event)
