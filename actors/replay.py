"""Replay: re-run the deterministic actors on a journal's recorded inputs.

For every session in the journal the actors are rebuilt from the config its
``session.started`` record holds, fed every recorded record they subscribe to in seq order,
and (with verification) each output they produce is compared with the journaled output of the
same source and cause. Lifecycle events are observational and never compared. Replay only
reads: it takes no lock and repairs nothing.

What is not a divergence:

* inputs on which the live actor failed (``actor.failed`` names them) are skipped, as the
  restarted live actor skipped them;
* inputs after an actor's recorded stop point (``actor.stopped``) or after it was given up on;
* outputs for inputs at the very end of a session that died (no ``session.stopped``) and whose
  outputs were never written: they are reported as unrecorded.
"""

from __future__ import annotations

import collections
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import orjson

from actors.base import FoldActor
from actors.config import config_from_dict
from actors.runtime import fold_specs
from events.base import Envelope, Event
from events.codec import Codec, default_codec
from events.journal import JournalError, TornTail, open_reader
from events.registry import selects
from events.system import ActorFailed, ActorGaveUp, ActorStopped, SessionStarted, SessionStopped


@attrs.frozen
class Divergence:
    """The first input whose replayed outputs differ from the journal."""

    seq: int
    actor: str
    expected: tuple[dict[str, Any], ...]
    got: tuple[dict[str, Any], ...]
    detail: str


@attrs.frozen
class Unrecorded:
    """Outputs replay produced for an input at the end of a session that died before
    writing them."""

    actor: str
    seq: int
    outputs: int


@attrs.frozen
class ReplayReport:
    records: int
    last_seq: int
    sessions: int
    inputs_handled: dict[str, int]
    outputs_compared: int
    skipped_failed: tuple[tuple[str, int], ...]
    unrecorded: tuple[Unrecorded, ...]
    divergence: Divergence | None
    torn_tail: TornTail | None

    @property
    def identical(self) -> bool:
        return self.divergence is None


@attrs.define
class _Expected:
    seq: int
    outputs: list[Event]
    matched: int = 0


@attrs.define
class _ActorReplay:
    name: str
    actor: FoldActor
    selectors: tuple[str, ...]
    pending: collections.deque[_Expected] = attrs.field(factory=collections.deque)
    raised: tuple[int, str] | None = None
    stopped_at: int | None = None
    gave_up: bool = False
    divergence: Divergence | None = None


class _Replayer:
    def __init__(self, codec: Codec, verify: bool, only_actor: str | None) -> None:
        self.codec = codec
        self.verify = verify
        self.only_actor = only_actor
        self.failed: set[tuple[str, int]] = set()
        self.actors: list[_ActorReplay] = []
        self.session_open = False
        self.session_stopped = False
        self.sessions = 0
        self.inputs_handled: collections.Counter[str] = collections.Counter()
        self.outputs_compared = 0
        self.skipped: list[tuple[str, int]] = []
        self.unrecorded: list[Unrecorded] = []
        self.divergences: list[Divergence] = []
        self.known_actors: set[str] = set()

    def _diverge(
        self, state: _ActorReplay, seq: int, expected: list[Event], got: list[Event], detail: str
    ) -> None:
        if state.divergence is None:
            state.divergence = Divergence(
                seq=seq,
                actor=state.name,
                expected=tuple(self.codec.event_to_dict(e) for e in expected),
                got=tuple(self.codec.event_to_dict(e) for e in got),
                detail=detail,
            )
            self.divergences.append(state.divergence)

    def start_session(self, envelope: Envelope) -> None:
        self.end_session()
        event = envelope.event
        assert isinstance(event, SessionStarted)
        config = config_from_dict(event.config)
        self.actors = []
        for spec in fold_specs(config):
            self.known_actors.add(spec.name)
            if self.only_actor is not None and spec.name != self.only_actor:
                continue
            actor = spec.factory()
            self.actors.append(_ActorReplay(spec.name, actor, tuple(actor.subscriptions)))
        self.sessions += 1
        self.session_open = True
        self.session_stopped = False

    def end_session(self, *, cut_off: bool = False) -> None:
        """Settle what is still pending when a session (or the journal, or ``--until``)
        ends."""
        if not self.session_open:
            return
        for state in self.actors:
            if state.raised is not None and self.verify and self.session_stopped and not cut_off:
                stopped_before = state.stopped_at is not None and state.raised[0] > state.stopped_at
                if not (state.gave_up or stopped_before):
                    self._diverge(state, state.raised[0], [], [], state.raised[1])
            while state.pending:
                expected = state.pending.popleft()
                if cut_off or state.gave_up:
                    continue
                if state.stopped_at is not None and expected.seq > state.stopped_at:
                    continue
                remaining = expected.outputs[expected.matched :]
                if not self.session_stopped:
                    # The process died before these outputs reached the journal.
                    self.unrecorded.append(Unrecorded(state.name, expected.seq, len(remaining)))
                elif self.verify:
                    self._diverge(
                        state,
                        expected.seq,
                        [],
                        remaining,
                        "replay produced outputs the journal does not hold",
                    )
        self.actors = []
        self.session_open = False

    def feed(self, envelope: Envelope) -> None:
        event = envelope.event
        if isinstance(event, SessionStarted) and envelope.source == "runtime":
            self.start_session(envelope)
        elif isinstance(event, SessionStopped):
            self.session_stopped = True
        if not self.session_open:
            return
        self._match_output(envelope)
        if isinstance(event, ActorStopped):
            for state in self.actors:
                if state.name == event.actor:
                    state.stopped_at = event.last_input_seq or 0
        elif isinstance(event, ActorGaveUp):
            for state in self.actors:
                if state.name == event.actor:
                    state.gave_up = True
        tag = event.TAG
        for state in self.actors:
            if state.gave_up or state.raised is not None or not selects(tag, state.selectors):
                continue
            if (state.name, envelope.seq) in self.failed:
                self.skipped.append((state.name, envelope.seq))
                continue
            try:
                outputs = list(state.actor.handle(envelope))
            except Exception as exc:
                # Live did not record a failure here (yet): if the journal goes on to show
                # this actor's later work it is a divergence; if it ends first (a death, or
                # --until), the failure may simply not have been written.
                state.raised = (envelope.seq, f"replay raised {type(exc).__name__}: {exc}")
                continue
            self.inputs_handled[state.name] += 1
            if outputs:
                state.pending.append(_Expected(envelope.seq, outputs))

    def _match_output(self, envelope: Envelope) -> None:
        if envelope.cause is None or envelope.event.OBSERVATIONAL:
            return
        state = next((s for s in self.actors if s.name == envelope.source), None)
        if state is None or state.divergence is not None:
            return
        cause = envelope.cause
        if state.raised is not None and self.verify:
            self._diverge(state, state.raised[0], [envelope.event], [], state.raised[1])
            return
        while state.pending and state.pending[0].seq < cause:
            expected = state.pending.popleft()
            if self.verify:
                self._diverge(
                    state,
                    expected.seq,
                    [],
                    expected.outputs[expected.matched :],
                    "replay produced outputs the journal does not hold",
                )
                return
        if not state.pending or state.pending[0].seq != cause:
            if self.verify:
                self._diverge(
                    state,
                    cause,
                    [envelope.event],
                    [],
                    "the journal holds an output replay did not produce",
                )
            return
        expected = state.pending[0]
        produced = expected.outputs[expected.matched]
        self.outputs_compared += 1
        if produced != envelope.event and self.verify:
            self._diverge(
                state,
                cause,
                [envelope.event],
                [produced],
                f"output {expected.matched + 1} of the input differs (journal seq {envelope.seq})",
            )
            return
        expected.matched += 1
        if expected.matched == len(expected.outputs):
            state.pending.popleft()


def _failed_inputs(records: Iterator[tuple[int, bytes]]) -> set[tuple[str, int]]:
    needle = ActorFailed.TAG.encode()
    failed: set[tuple[str, int]] = set()
    for _, payload in records:
        if needle in payload:
            event = orjson.loads(payload)["event"]
            if event["type"] == ActorFailed.TAG and event.get("input_seq") is not None:
                failed.add((event["actor"], event["input_seq"]))
    return failed


def replay(
    directory: str | Path,
    *,
    verify: bool = True,
    until: int | None = None,
    actor: str | None = None,
    codec: Codec | None = None,
) -> ReplayReport:
    """Replay the journal in ``directory``; see the module docstring.

    Raises:
        events.journal.JournalError: the journal is missing or unreadable.
        actors.config.ConfigError: a session's recorded config cannot be rebuilt (for
            example a strategy class that no longer imports).
        ValueError: ``actor`` names no deterministic actor of the journal.
    """
    codec = codec if codec is not None else default_codec()
    reader = open_reader(Path(directory))
    replayer = _Replayer(codec, verify, actor)
    # Failures are read from the whole journal: with --until the cut may fall between a
    # failing input and its actor.failed record.
    replayer.failed = _failed_inputs(reader.read(1, None))
    records = 0
    last_seq = 0
    for seq, payload in reader.read(1, until):
        envelope = codec.decode(payload)
        records += 1
        last_seq = seq
        replayer.feed(envelope)
    replayer.end_session(cut_off=until is not None and until <= last_seq)
    if actor is not None and actor not in replayer.known_actors:
        known = ", ".join(sorted(replayer.known_actors)) or "none"
        raise ValueError(
            f"no deterministic actor named {actor!r} in this journal (actors: {known})"
        )
    if records == 0 and reader.tail_problem is not None:
        tail = reader.tail_problem
        raise JournalError(
            f"{Path(directory) / tail.segment} holds no readable record "
            f"({tail.reason} at offset {tail.offset})"
        )
    divergence = min(replayer.divergences, key=lambda d: d.seq, default=None)
    return ReplayReport(
        records=records,
        last_seq=last_seq,
        sessions=replayer.sessions,
        inputs_handled=dict(replayer.inputs_handled),
        outputs_compared=replayer.outputs_compared,
        skipped_failed=tuple(replayer.skipped),
        unrecorded=tuple(replayer.unrecorded),
        divergence=divergence,
        torn_tail=reader.tail_problem,
    )
