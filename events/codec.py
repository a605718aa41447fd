"""All wire policy for journal records: one cattrs converter over orjson.

* Decimal <-> str only. A float (or any non-string) where a Decimal belongs is an error, and
  so is a non-finite value: money never passes through binary floating point.
* Events form a tagged union keyed by their stable ``TAG`` under the key ``type``: the codec
  maps each tag to its class and that class's hooks, fetched once.
* A stored record is ``{seq, ts_ns, source, cause, v, event: {type, ...}}``; ``v`` is the
  event class's VERSION when written, and older dicts are upcast before structuring.
* Structure/unstructure hooks are fetched once per class and reused on the hot path.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import cattrs
import orjson
from cattrs.preconf.orjson import make_converter

from events import upcast as _upcast
from events.base import Envelope, Event
from events.registry import EVENT_CLASSES


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
        self._structure = {
            cls.TAG: (cls, self.converter.get_structure_hook(cls)) for cls in EVENT_CLASSES
        }

    def event_to_dict(self, event: Event) -> dict[str, Any]:
        """The stored form of one event: ``{"type": TAG, ...fields}``."""
        cls = type(event)
        try:
            hook = self._unstructure[cls]
        except KeyError:
            raise TypeError(
                f"{cls.__qualname__} is not a registered event class (see events/registry.py)"
            ) from None
        return {"type": cls.TAG, **hook(event)}

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
            return orjson.dumps(self.event_to_dict(event))
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
                b',"event":',
                body,
                b"}",
            )
        )

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
