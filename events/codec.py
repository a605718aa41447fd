"""All wire policy for journal records: one cattrs converter over orjson.

* Decimal <-> str only. A float (or any non-string) where a Decimal belongs is an error, and
  so is a non-finite value: money never passes through binary floating point.
* Events form a tagged union keyed by their stable ``TAG`` under the key ``type``: the codec
  maps each tag to its class and that class's hooks, fetched once.
* A stored record is ``{seq, ts_ns, source, cause, v, event: {type, ...}}``; ``v`` is the
  event class's VERSION when written, and older dicts are upcast before structuring.
* Structure/unstructure hooks are fetched once per class and reused on the hot path.
* Encoding uses a function generated per event class (:func:`_fast_unstructurer`) that
  checks the common field types inline (str, int, bool, Decimal, their optionals, book
  levels) and hands the whole event to the converter's own hook the moment anything is not
  exactly as expected, so it produces the converter's values, bytes and errors; other field
  types call their converter hook directly.
"""

from __future__ import annotations

import enum
import linecache
import types
import typing
from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import Any

import attrs
import cattrs
import orjson
from cattrs.fns import identity
from cattrs.preconf.orjson import make_converter

from events import upcast as _upcast
from events.base import Envelope, Event
from events.registry import EVENT_CLASSES

_EVENT = b',"event":'


class DecodeError(ValueError):
    """A stored record or external payload does not decode into a known event."""


def _structure_decimal(value: Any, _: type) -> Decimal:
    if type(value) is not str:
        raise TypeError(
            f"a Decimal must be given as a string, got {type(value).__name__} {value!r}"
        )
    result = Decimal(value)
    if not result.is_finite():
        raise ValueError(f"a Decimal must be finite, got {value!r}")
    return result


def _unstructure_decimal(value: Decimal) -> str:
    if type(value) is not Decimal:
        raise TypeError(
            f"a Decimal field holds {type(value).__name__} {value!r}; money must be a Decimal"
        )
    if not value.is_finite():
        raise ValueError(f"a Decimal must be finite, got {value!r}")
    return str(value)


def _strict_hooks(kind: type) -> tuple[Callable[[Any, type], Any], Callable[[Any], Any]]:
    """Hooks accepting exactly ``kind`` (no bool for int, no int for str), both ways."""
    name = kind.__name__

    def structure(value: Any, _: type) -> Any:
        if type(value) is not kind:
            raise TypeError(f"expected {name}, got {type(value).__name__} {value!r}")
        return value

    def unstructure(value: Any) -> Any:
        if type(value) is not kind:
            raise TypeError(f"a {name} field holds {type(value).__name__} {value!r}")
        return value

    unstructure.exact_kind = kind  # type: ignore[attr-defined]  # see _fast_unstructurer
    return structure, unstructure


def _structure_float(value: Any, _: type) -> float:
    if type(value) is float or type(value) is int:
        return float(value)
    raise TypeError(f"expected a number, got {type(value).__name__} {value!r}")


def _unstructure_float(value: Any) -> float:
    if type(value) is float or type(value) is int:
        return value
    raise TypeError(f"a float field holds {type(value).__name__} {value!r}")


def _is_enum(cls: Any) -> bool:
    return isinstance(cls, type) and issubclass(cls, enum.Enum)


def _enum_structure_factory(cls: type[enum.Enum]) -> Callable[[Any, type], enum.Enum]:
    members = cls._value2member_map_

    def structure(value: Any, _: type) -> enum.Enum:
        try:
            return members[value]
        except (KeyError, TypeError):
            allowed = ", ".join(repr(m.value) for m in cls)
            raise ValueError(
                f"{value!r} is not a valid {cls.__name__} (allowed: {allowed})"
            ) from None

    return structure


#: The stored form of book levels (``tuple[Level, ...]``) is checked and built by
#: :func:`_levels`; the converter's generic hook gives the same list of string pairs.
_LEVELS = tuple[tuple[Decimal, Decimal], ...]


def _levels(levels: Any) -> list[tuple[str, str]] | None:
    """``[(str(price), str(size)), ...]`` for a tuple of pairs of finite Decimals; None for
    anything else (the caller then takes the converter's path, which decides)."""
    if type(levels) is not tuple:
        return None
    out = []
    append = out.append
    for level in levels:
        if type(level) is not tuple or len(level) != 2:
            return None
        price, size = level
        if (
            type(price) is not Decimal
            or type(size) is not Decimal
            or not price.is_finite()
            or not size.is_finite()
        ):
            return None
        append((str(price), str(size)))
    return out


def _optional_of(annotation: Any) -> Any:
    """``X`` for ``X | None`` (either spelling), else None."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = typing.get_args(annotation)
        if len(args) == 2 and type(None) in args:
            return args[0] if args[1] is type(None) else args[1]
    return None


def _exact_kind(converter: cattrs.Converter, annotation: Any) -> type | None:
    """The type a field's converter hook accepts exactly and returns unchanged (str, int,
    bool: the strict hooks of :func:`build_converter`), or None."""
    hook = converter.get_unstructure_hook(annotation)
    kind = getattr(hook, "exact_kind", None)
    return kind if kind is annotation else None


def _fast_unstructurer(
    cls: type[Event], converter: cattrs.Converter
) -> Callable[[Event], dict[str, Any]] | None:
    """Generate ``event -> {"type": TAG, ...fields}`` for ``cls``, equal to
    ``{"type": TAG, **converter_hook(event)}`` (same keys, order, values and errors).

    Each field is read once, in order. str/int/bool (exact type), finite Decimal (to str),
    their ``| None`` forms and book levels are checked inline; at the first value that is not
    exactly that, the whole event goes through the converter's hook instead (which returns
    its own value or raises its own error). Other fields call their converter hook, as the
    converter's generated function does. None when ``cls`` has fields this does not mirror
    (then the converter's hook is used).
    """
    hints = typing.get_type_hints(cls)
    generic = converter.get_unstructure_hook(cls)
    tag = cls.TAG
    namespace: dict[str, Any] = {
        "_generic": generic,
        "_tag": tag,
        "_Decimal": Decimal,
        "_levels": _levels,
        "str": str,
        "int": int,
        "bool": bool,
        "type": type,
    }
    lines = [f"def fast_unstructure_{cls.__name__}(event):"]
    slow = "return {'type': _tag, **_generic(event)}"
    entries = ["'type': _tag"]
    for index, field in enumerate(attrs.fields(cls)):
        if not field.init or field.alias != field.name or not field.name.isidentifier():
            return None
        name = field.name
        annotation = hints[name]
        value = f"v{index}"
        lines.append(f"    {value} = event.{name}")
        optional = _optional_of(annotation)
        inner = optional if optional is not None else annotation
        none_ok = f"{value} is not None and " if optional is not None else ""
        kind = _exact_kind(converter, inner)
        hook = converter.get_unstructure_hook(annotation)
        if kind is not None and (optional is None or _is_optional_hook(hook)):
            lines.append(f"    if {none_ok}type({value}) is not {kind.__name__}:")
            lines.append(f"        {slow}")
            entries.append(f"{name!r}: {value}")
        elif inner is Decimal and converter.get_unstructure_hook(Decimal) is _unstructure_decimal:
            if optional is not None and not _is_optional_hook(hook):
                return None
            lines.append(
                f"    if {none_ok}(type({value}) is not _Decimal or not {value}.is_finite()):"
            )
            lines.append(f"        {slow}")
            if optional is None:
                entries.append(f"{name!r}: str({value})")
            else:
                entries.append(f"{name!r}: None if {value} is None else str({value})")
        elif annotation == _LEVELS and _levels_hook_matches(converter, hook):
            lines.append(f"    {value} = _levels({value})")
            lines.append(f"    if {value} is None:")
            lines.append(f"        {slow}")
            entries.append(f"{name!r}: {value}")
        elif hook is identity:
            entries.append(f"{name!r}: {value}")
        else:
            namespace[f"_hook{index}"] = hook
            lines.append(f"    {value} = _hook{index}({value})")
            entries.append(f"{name!r}: {value}")
    lines.append("    return {" + ", ".join(entries) + "}")
    source = "\n".join(lines) + "\n"
    filename = f"<tern codec {cls.__module__}.{cls.__qualname__}>"
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    exec(compile(source, filename, "exec"), namespace)
    return namespace[f"fast_unstructure_{cls.__name__}"]


def _is_optional_hook(hook: Any) -> bool:
    """The converter's ``X | None`` hook is cattrs' ``None if v is None else inner(v)``."""
    return getattr(hook, "__qualname__", "").endswith(
        "gen_unstructure_optional.<locals>.unstructure_optional"
    )


def _levels_hook_matches(converter: cattrs.Converter, hook: Any) -> bool:
    """The converter unstructures levels as a list of ``(str, str)`` through the strict
    Decimal hook (checked on a sample, so a changed converter falls back to its hook)."""
    if converter.get_unstructure_hook(Decimal) is not _unstructure_decimal:
        return False
    sample = ((Decimal("1.5"), Decimal("0")), (Decimal("-2E+3"), Decimal("0.001")))
    try:
        return hook(sample) == _levels(sample) and type(hook(sample)) is list
    except Exception:
        return False


def _tagged(tag: str, hook: Callable[[Any], dict[str, Any]]) -> Callable[[Event], dict[str, Any]]:
    def to_dict(event: Event) -> dict[str, Any]:
        return {"type": tag, **hook(event)}

    return to_dict


def build_converter(*, detailed_validation: bool = False) -> cattrs.Converter:
    """Build the converter. Use ``detailed_validation=True`` for external input."""
    converter = make_converter(detailed_validation=detailed_validation, forbid_extra_keys=True)
    for kind in (int, str, bool):
        structure, unstructure = _strict_hooks(kind)
        converter.register_structure_hook(kind, structure)
        converter.register_unstructure_hook(kind, unstructure)
    converter.register_structure_hook(float, _structure_float)
    converter.register_unstructure_hook(float, _unstructure_float)
    converter.register_structure_hook(Decimal, _structure_decimal)
    converter.register_unstructure_hook(Decimal, _unstructure_decimal)
    converter.register_structure_hook_factory(_is_enum, _enum_structure_factory)
    return converter


class Codec:
    """Encodes envelopes to journal bytes and back, with hooks fetched once."""

    def __init__(self, converter: cattrs.Converter | None = None) -> None:
        self.converter = converter if converter is not None else build_converter()
        self._unstructure = {cls: self.converter.get_unstructure_hook(cls) for cls in EVENT_CLASSES}
        #: event class -> event -> stored dict with its "type" (see _fast_unstructurer).
        self._to_dict: dict[type, Callable[[Event], dict[str, Any]]] = {}
        for cls, hook in self._unstructure.items():
            fast = _fast_unstructurer(cls, self.converter)
            self._to_dict[cls] = fast if fast is not None else _tagged(cls.TAG, hook)
        self._structure = {
            cls.TAG: (cls, self.converter.get_structure_hook(cls)) for cls in EVENT_CLASSES
        }

    def event_to_dict(self, event: Event) -> dict[str, Any]:
        """The stored form of one event: ``{"type": TAG, ...fields}``."""
        try:
            to_dict = self._to_dict[type(event)]
        except KeyError:
            raise _unregistered(event) from None
        return to_dict(event)

    def event_from_dict(self, stored: dict[str, Any], version: int | None = None) -> Event:
        """Structure one stored event dict, upcasting it from ``version`` when older.

        Every field must be present with exactly its type, and no other key may appear.
        """
        return self._structure_owned(dict(stored), version)

    def _structure_owned(self, stored: dict[str, Any], version: int | None) -> Event:
        # ``stored`` belongs to the caller's decode and may be changed here.
        try:
            tag = stored["type"]
            cls, hook = self._structure[tag]
        except (KeyError, TypeError):
            raise DecodeError(f"unknown event type {stored.get('type')!r}") from None
        if version is not None and version != cls.VERSION:
            stored = _upcast.upcast(tag, version, cls.VERSION, stored)
        del stored["type"]
        try:
            return hook(stored, cls)
        except Exception as exc:
            raise DecodeError(f"cannot decode {tag!r}: {_describe(exc)}") from exc

    def record_dict(self, envelope: Envelope) -> dict[str, Any]:
        """The stored record shape of DESIGN section 4."""
        return {
            "seq": envelope.seq,
            "ts_ns": envelope.ts_ns,
            "source": envelope.source,
            "cause": envelope.cause,
            "v": type(envelope.event).VERSION,
            "event": self.event_to_dict(envelope.event),
        }

    def encode(self, envelope: Envelope) -> bytes:
        """Encode one envelope as journal payload bytes."""
        return orjson.dumps(self.record_dict(envelope))

    def encode_event(self, event: Event) -> bytes:
        """Validate and encode one event body; raises TypeError for anything unencodable.

        The bus calls this in the publisher's task so a bad event fails its publisher, not
        the journal writer.
        """
        try:
            to_dict = self._to_dict[type(event)]
        except KeyError:
            raise _unregistered(event) from None
        try:
            return orjson.dumps(to_dict(event))
        except orjson.JSONEncodeError as exc:
            raise TypeError(f"cannot encode {type(event).__qualname__}: {exc}") from None

    @staticmethod
    def assemble(
        seq: int, ts_ns: int, source_json: bytes, cause: int | None, version: int, body: bytes
    ) -> bytes:
        """Build record bytes from an already encoded body; byte-identical to
        ``orjson.dumps(record_dict(...))`` (a golden test holds it to that)."""
        return b"".join(
            (
                b'{"seq":',
                str(seq).encode(),
                b',"ts_ns":',
                str(ts_ns).encode(),
                b',"source":',
                source_json,
                b',"cause":',
                b"null" if cause is None else str(cause).encode(),
                b',"v":',
                str(version).encode(),
                _EVENT,
                body,
                b"}",
            )
        )

    @staticmethod
    def assemble_records(
        first_seq: int,
        ts_ns: int,
        groups: Iterable[tuple[bytes, int | None, Iterable[Event], Iterable[bytes]]],
    ) -> list[tuple[int, bytes]]:
        """``(seq, record bytes)`` for the events of ``groups`` (``(source_json, cause,
        events, encoded bodies)``), in order, with consecutive seqs from ``first_seq``: each
        record is byte-identical to :meth:`assemble` of its seq, ``ts_ns``, its group's
        source and cause, its event's class VERSION and its body."""
        records: list[tuple[int, bytes]] = []
        append = records.append
        join = b"".join
        seq = first_seq
        stamp = join((b',"ts_ns":', str(ts_ns).encode(), b',"source":'))
        for source_json, cause, events, bodies in groups:
            head = join(
                (
                    stamp,
                    source_json,
                    b',"cause":',
                    b"null" if cause is None else str(cause).encode(),
                    b',"v":',
                )
            )
            for event, body in zip(events, bodies, strict=True):
                append(
                    (
                        seq,
                        join(
                            (
                                b'{"seq":',
                                str(seq).encode(),
                                head,
                                str(type(event).VERSION).encode(),
                                _EVENT,
                                body,
                                b"}",
                            )
                        ),
                    )
                )
                seq += 1
        return records

    def decode(self, payload: bytes) -> Envelope:
        """Decode journal payload bytes into an Envelope.

        Raises:
            DecodeError: the bytes are not a record of a known event type.
        """
        try:
            record = orjson.loads(payload)
            stored = record["event"]
            return Envelope(
                seq=record["seq"],
                ts_ns=record["ts_ns"],
                source=record["source"],
                cause=record["cause"],
                event=self._structure_owned(stored, record["v"]),
            )
        except DecodeError:
            raise
        except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError) as exc:
            raise DecodeError(f"malformed journal record: {exc}") from exc

    def decode_dict(self, payload: bytes) -> dict[str, Any]:
        """Parse a record without structuring it (for tools that only show records)."""
        return orjson.loads(payload)


def _unregistered(event: object) -> TypeError:
    return TypeError(
        f"{type(event).__qualname__} is not a registered event class (see events/registry.py)"
    )


def _describe(error: BaseException) -> str:
    """One line for a structuring error, naming the fields when cattrs grouped them."""
    if isinstance(error, cattrs.ForbiddenExtraKeysError):
        return f"unexpected fields {sorted(error.extra_fields)}"
    if isinstance(error, BaseExceptionGroup):
        return "; ".join(_describe(inner) for inner in error.exceptions)
    if isinstance(error, KeyError):
        return f"missing field {error}"
    return str(error)


_default: Codec | None = None


def default_codec() -> Codec:
    """The process-wide codec, built on first use (after every event module is imported)."""
    global _default
    if _default is None:
        _default = Codec()
    return _default
