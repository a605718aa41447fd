"""The event base class and the envelope the bus wraps around every event.

Events are plain frozen attrs classes. They carry no serialisation code: all wire policy lives
in :mod:`events.codec`. Each concrete class names a stable ``TAG`` (dotted lowercase,
``domain.event``, never renamed) and a ``VERSION`` that is bumped whenever its stored shape
changes; :mod:`events.upcast` rewrites older stored dicts before they become objects.
"""

from __future__ import annotations

from typing import ClassVar

import attrs


@attrs.frozen(kw_only=True)
class Event:
    """Base of every journaled event. Concrete subclasses set ``TAG`` and add fields."""

    TAG: ClassVar[str] = ""
    VERSION: ClassVar[int] = 1
    #: Lifecycle events record what the runtime observed (an actor failed, a session
    #: started). Replay verification never compares them.
    OBSERVATIONAL: ClassVar[bool] = False


@attrs.frozen(kw_only=True)
class Envelope:
    """One journal record: an event plus the metadata the bus stamped on it.

    Attributes:
        seq: position in the journal, gap-free from 1, assigned by the bus.
        ts_ns: the bus clock (live or virtual) when the record was accepted.
        source: name of the actor (or edge) that published the event.
        cause: seq of the record whose handling produced this one; ``None`` for inputs
            (bytes from Binance, operator commands, timer firings).
        event: the event itself.
    """

    seq: int
    ts_ns: int
    source: str
    cause: int | None
    event: Event

    @property
    def is_input(self) -> bool:
        """True when the record entered from outside (it has no cause)."""
        return self.cause is None
