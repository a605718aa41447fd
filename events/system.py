"""Lifecycle and runtime events: sessions, actors, timers, the journal itself.

Everything here except the timer events is observational: replay verification skips it.
"""

from __future__ import annotations

from typing import Any, ClassVar

import attrs

from events.base import Event


@attrs.frozen(kw_only=True)
class SessionStarted(Event):
    """A supervisor process began a session. ``config`` holds no secrets."""

    TAG: ClassVar[str] = "session.started"
    OBSERVATIONAL: ClassVar[bool] = True
    session_id: str
    config: dict[str, Any]
    versions: dict[str, str]
    pid: int


@attrs.frozen(kw_only=True)
class SessionStopped(Event):
    """The session ended in order; ``reason`` says why (signal, duration, escalation)."""

    TAG: ClassVar[str] = "session.stopped"
    OBSERVATIONAL: ClassVar[bool] = True
    session_id: str
    reason: str
    clean: bool


@attrs.frozen(kw_only=True)
class ActorStarted(Event):
    TAG: ClassVar[str] = "actor.started"
    OBSERVATIONAL: ClassVar[bool] = True
    actor: str
    incarnation: int


@attrs.frozen(kw_only=True)
class ActorStopped(Event):
    """An actor returned. For deterministic actors ``last_input_seq`` is the last input it
    handled, which bounds what replay verification compares."""

    TAG: ClassVar[str] = "actor.stopped"
    OBSERVATIONAL: ClassVar[bool] = True
    actor: str
    incarnation: int
    last_input_seq: int | None = None


@attrs.frozen(kw_only=True)
class ActorFailed(Event):
    """An actor raised. ``input_seq`` is the input it was handling, when known."""

    TAG: ClassVar[str] = "actor.failed"
    OBSERVATIONAL: ClassVar[bool] = True
    actor: str
    incarnation: int
    error_type: str
    error: str
    input_seq: int | None = None


@attrs.frozen(kw_only=True)
class ActorRestarted(Event):
    TAG: ClassVar[str] = "actor.restarted"
    OBSERVATIONAL: ClassVar[bool] = True
    actor: str
    incarnation: int
    delay_ms: int
    failures_in_window: int


@attrs.frozen(kw_only=True)
class ActorGaveUp(Event):
    """Too many failures inside the restart window; the session stops."""

    TAG: ClassVar[str] = "actor.gave_up"
    OBSERVATIONAL: ClassVar[bool] = True
    actor: str
    failures: int
    window_s: float


@attrs.frozen(kw_only=True)
class ScheduleTimer(Event):
    """Command to the timer edge: fire ``name`` for ``owner`` after ``delay_ms``, and then
    every ``interval_ms`` when it is set. Re-scheduling a name replaces it."""

    TAG: ClassVar[str] = "timer.schedule"
    owner: str
    name: str
    delay_ms: int
    interval_ms: int | None = None


@attrs.frozen(kw_only=True)
class CancelTimer(Event):
    TAG: ClassVar[str] = "timer.cancel"
    owner: str
    name: str


@attrs.frozen(kw_only=True)
class TimerFired(Event):
    """A timer firing, recorded as an input so replay sees time exactly as it passed."""

    TAG: ClassVar[str] = "timer.fired"
    owner: str
    name: str
    count: int


@attrs.frozen(kw_only=True)
class JournalRecovered(Event):
    """Opening the journal found an unclean end and repaired it before this session."""

    TAG: ClassVar[str] = "journal.recovered"
    OBSERVATIONAL: ClassVar[bool] = True
    segment: str
    truncated_bytes: int
    last_seq: int
    reason: str
