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
from events.market import BookDeltas, BookSnapshot
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


# ------------------------------------------------ the generated encoders and record assembly


def _converter_dict(event: Event) -> dict:
    """The stored dict as the converter's own hook makes it (the reference)."""
    codec = default_codec()
    return {"type": type(event).TAG, **codec._unstructure[type(event)](event)}


def _converter_bytes(event: Event) -> bytes:
    try:
        return orjson.dumps(_converter_dict(event))
    except orjson.JSONEncodeError as exc:
        raise TypeError(f"cannot encode {type(event).__qualname__}: {exc}") from None


def _outcome(encode: typing.Callable[[Event], typing.Any], event: Event) -> tuple:
    """What ``encode`` did: its value (repr keeps list/tuple and str/Decimal apart) or its
    error."""
    try:
        value = encode(event)
    except Exception as exc:
        return ("raised", type(exc), str(exc))
    return ("returned", repr(value))


class _DecimalSubclass(Decimal):
    pass


_LEVEL = (Decimal("1.5"), Decimal("2"))
#: Values a field might wrongly hold; each encoder must do with them what the converter does.
ODD_VALUES = [
    None,
    0,
    1,
    2**70,
    True,
    False,
    1.5,
    float("nan"),
    "1",
    "",
    b"x",
    Decimal("1.5"),
    Decimal("-0"),
    Decimal("NaN"),
    Decimal("sNaN"),
    Decimal("-Infinity"),
    _DecimalSubclass("2"),
    (),
    [],
    ("x", "y"),
    ("x", 1),
    {"a": 1},
    (_LEVEL,),
    [_LEVEL],
    (list(_LEVEL),),
    ((*_LEVEL, Decimal(3)),),
    ((Decimal(1),),),
    ((Decimal("NaN"), Decimal(1)),),
    ((Decimal(1), 2),),
    ((1.5, Decimal(1)),),
    (("1", "2"),),
    ("ab",),
    ({Decimal(1): "a", Decimal(2): "b"},),
    (frozenset(_LEVEL),),
    ((Decimal(1), _DecimalSubclass(2)),),
]


def test_every_registered_class_has_a_generated_encoder() -> None:
    codec = default_codec()
    for cls in EVENT_CLASSES:
        assert codec._to_dict[cls].__name__ == f"fast_unstructure_{cls.__name__}"


@given(any_event)
def test_generated_encoders_give_the_converters_dicts_and_bytes(event: Event) -> None:
    codec = default_codec()
    assert repr(codec.event_to_dict(event)) == repr(_converter_dict(event))
    assert codec.encode_event(event) == _converter_bytes(event)


@given(st.sampled_from(EVENT_CLASSES).flatmap(event_strategy), st.data())
def test_generated_encoders_refuse_exactly_what_the_converter_refuses(
    event: Event, data: st.DataObject
) -> None:
    codec = default_codec()
    fields = attrs.fields(type(event))
    for _ in range(data.draw(st.integers(1, 2))):
        field = data.draw(st.sampled_from(fields))
        odd = data.draw(st.sampled_from(ODD_VALUES))
        event = attrs.evolve(event, **{field.name: odd})
    assert _outcome(codec.event_to_dict, event) == _outcome(_converter_dict, event)
    assert _outcome(codec.encode_event, event) == _outcome(_converter_bytes, event)


_level_part = finite_decimals | st.sampled_from(
    [Decimal("NaN"), Decimal("-Infinity"), _DecimalSubclass(1), 1, 1.5, "1", None]
)
_levels = st.lists(
    st.tuples(finite_decimals, finite_decimals)
    | st.tuples(_level_part, _level_part)
    | st.tuples(_level_part)
    | st.tuples(_level_part, _level_part, _level_part)
    | st.lists(_level_part, min_size=2, max_size=2),
    max_size=4,
)


@given(_levels.map(tuple) | _levels, _levels.map(tuple))
def test_book_levels_encode_exactly_as_the_converter_does(bids, asks) -> None:
    codec = default_codec()
    events = [
        BookDeltas(
            client="c", instrument_id="i", first_update_id=1, update_id=2, bids=bids, asks=asks
        ),
        BookSnapshot(client="c", instrument_id="i", update_id=2, bids=bids, asks=asks),
    ]
    for event in events:
        assert _outcome(codec.event_to_dict, event) == _outcome(_converter_dict, event)
        assert _outcome(codec.encode_event, event) == _outcome(_converter_bytes, event)


def test_levels_are_stored_as_string_pairs_and_only_finite_decimals_pass() -> None:
    codec = default_codec()
    event = BookDeltas(
        client="c",
        instrument_id="i",
        first_update_id=1,
        update_id=2,
        bids=((Decimal("100.10"), Decimal("0")),),
        asks=((Decimal("1E+3"), Decimal("-0.001")),),
    )
    assert codec.event_to_dict(event)["bids"] == [("100.10", "0")]
    assert b'"asks":[["1E+3","-0.001"]]' in codec.encode_event(event)
    for bad, message in [
        (Decimal("NaN"), "must be finite"),
        (1.5, "money must be a Decimal"),
        ("1", "money must be a Decimal"),
    ]:
        with pytest.raises((TypeError, ValueError), match=message):
            codec.encode_event(attrs.evolve(event, asks=((Decimal(1), bad),)))


_groups = st.lists(
    st.tuples(
        st.text(min_size=1, max_size=8),
        st.none() | st.integers(1, 2**63 - 1),
        st.lists(any_event, max_size=3),
    ),
    max_size=4,
)


@given(st.integers(1, 2**62), st.integers(0, 2**63 - 1), _groups)
def test_assembled_records_are_byte_identical_to_the_record_shape(
    first_seq: int, ts_ns: int, groups: list
) -> None:
    codec = default_codec()
    prepared = [
        (orjson.dumps(source), cause, events, [codec.encode_event(e) for e in events])
        for source, cause, events in groups
    ]
    expected = []
    seq = first_seq
    for source, cause, events in groups:
        for event in events:
            envelope = Envelope(seq=seq, ts_ns=ts_ns, source=source, cause=cause, event=event)
            expected.append((seq, codec.encode(envelope)))
            seq += 1
    assert codec.assemble_records(first_seq, ts_ns, prepared) == expected


def test_golden_records_assemble_identically() -> None:
    codec = default_codec()
    for line in GOLDEN.read_bytes().splitlines():
        envelope = codec.decode(line)
        body = codec.encode_event(envelope.event)
        group = (orjson.dumps(envelope.source), envelope.cause, (envelope.event,), [body])
        assert codec.assemble_records(envelope.seq, envelope.ts_ns, [group]) == [
            (envelope.seq, line)
        ]
