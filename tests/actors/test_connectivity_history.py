"""What a restarted connectivity actor reads from the journal: losses, duties, checkpoints."""

from __future__ import annotations

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actors.connectivity_history import History, fold, kind_of, stream_base
from events.base import Envelope, Event
from events.codec import default_codec
from events.connectivity import (
    RestRequest,
    RestResponse,
    StreamConnected,
    StreamDisconnected,
    StreamFrame,
    StreamGap,
    SubscribeStreams,
    UnsubscribeStreams,
    UserStreamGap,
    UserStreamStopped,
)
from events.journal import MemoryJournalStore
from events.system import ActorFailed, ActorStarted, SessionStarted

CODEC = default_codec()
ME = "connectivity"


@attrs.define
class Journal:
    """A memory journal written record by record with explicit times."""

    store: MemoryJournalStore = attrs.field(factory=MemoryJournalStore)
    seq: int = 0

    def add(self, event: Event, *, ts_ns: int, source: str = ME) -> int:
        self.seq += 1
        envelope = Envelope(seq=self.seq, ts_ns=ts_ns, source=source, cause=None, event=event)
        self.store.append([(self.seq, CODEC.encode(envelope))])
        return self.seq


def session() -> Journal:
    journal = Journal()
    journal.add(SessionStarted(session_id="s", config={}, versions={}, pid=1), ts_ns=1)
    journal.add(ActorStarted(actor=ME, incarnation=1), ts_ns=2, source="supervisor")
    return journal


def folded(journal: Journal) -> History:
    history = History(session_seq=1)
    fold(history, journal.store, CODEC, journal.seq, ME)
    return history


def frame(connection: str, received_ns: int, client: str = "spot") -> StreamFrame:
    return StreamFrame(client=client, connection=connection, received_ns=received_ns, text="{}")


def connected(connection: str, client: str = "spot") -> StreamConnected:
    return StreamConnected(client=client, connection=connection, url="ws://x")


def dropped(connection: str, reconnect_in_ms: int | None, client: str = "spot"):
    return StreamDisconnected(
        client=client, connection=connection, reason="r", reconnect_in_ms=reconnect_in_ms
    )


def test_a_connection_in_backoff_is_not_hidden_by_a_live_sibling() -> None:
    journal = session()
    journal.add(connected("spot#1"), ts_ns=10)
    journal.add(connected("spot#2"), ts_ns=11)
    journal.add(frame("spot#2", 20), ts_ns=21)
    journal.add(dropped("spot#2", reconnect_in_ms=500), ts_ns=30)  # in backoff from here
    journal.add(frame("spot#1", 40), ts_ns=41)
    journal.add(frame("spot#1", 90), ts_ns=91)
    history = folded(journal)
    assert history.lost_since_ns("spot", "market") == 20  # not 90: spot#2 lost from 20
    # Once its gap is reported, the live sibling's last frame is where a loss would start.
    journal.add(
        StreamGap(
            client="spot", connection="spot#2", streams=("a",), from_ns=20, to_ns=95, reason="r"
        ),
        ts_ns=95,
    )
    assert folded(journal).lost_since_ns("spot", "market") == 90


def test_a_connection_ended_on_purpose_is_forgotten() -> None:
    journal = session()
    journal.add(connected("spot#1"), ts_ns=10)
    journal.add(frame("spot#1", 15), ts_ns=16)
    journal.add(dropped("spot#1", reconnect_in_ms=None), ts_ns=20)  # rotated away, say
    journal.add(connected("spot#2"), ts_ns=21)
    journal.add(frame("spot#2", 70), ts_ns=71)
    assert folded(journal).lost_since_ns("spot", "market") == 70


def test_a_dead_incarnations_connections_stay_lost_until_a_restart_gap_covers_them() -> None:
    journal = session()
    journal.add(connected("usdm/public#1", "usdm"), ts_ns=10)
    journal.add(connected("usdm/market#1", "usdm"), ts_ns=10)
    journal.add(frame("usdm/public#1", 50, "usdm"), ts_ns=51)
    journal.add(frame("usdm/market#1", 60, "usdm"), ts_ns=61)
    journal.add(connected("usdm/user#1", "usdm"), ts_ns=62)
    journal.add(frame("usdm/user#1", 63, "usdm"), ts_ns=64)
    journal.add(ActorStarted(actor=ME, incarnation=2), ts_ns=100, source="supervisor")
    journal.add(connected("usdm/public~2#1", "usdm"), ts_ns=110)
    journal.add(frame("usdm/public~2#1", 120, "usdm"), ts_ns=121)
    history = folded(journal)
    assert history.incarnations == 2
    assert history.lost_since_ns("usdm", "market") == 50
    assert history.lost_since_ns("usdm", "user") == 63
    # The restart gap of /public covers that route only; /market's dead link is still lost.
    journal.add(
        StreamGap(
            client="usdm",
            connection="usdm/public~2#restart",
            streams=("a",),
            from_ns=50,
            to_ns=110,
            reason="the connectivity actor restarted",
        ),
        ts_ns=130,
    )
    assert folded(journal).lost_since_ns("usdm", "market") == 60
    # The new session goes live (its connected record first), then reports the restart gap.
    journal.add(connected("usdm/user~2#1", "usdm"), ts_ns=140)
    journal.add(
        UserStreamGap(client="usdm", from_ms=0, to_ms=1, reason="the connectivity actor restarted"),
        ts_ns=141,
    )
    assert folded(journal).lost_since_ns("usdm", "user") == 140


def test_a_restart_gap_leaves_the_new_incarnations_own_losses() -> None:
    """Incarnation 2's restart gap covers incarnation 1's connections only: its own
    connection that dropped meanwhile stays lost until its own gap."""
    journal = session()
    journal.add(connected("spot#1"), ts_ns=10)
    journal.add(frame("spot#1", 50), ts_ns=51)
    journal.add(connected("spot~2#1"), ts_ns=110)  # before actor.started: order is no clue
    journal.add(ActorStarted(actor=ME, incarnation=2), ts_ns=111, source="supervisor")
    journal.add(connected("spot~2#2"), ts_ns=112)
    journal.add(frame("spot~2#2", 120), ts_ns=121)
    journal.add(dropped("spot~2#2", reconnect_in_ms=500), ts_ns=130)
    restart = StreamGap(
        client="spot",
        connection="spot~2#restart",
        streams=("a", "b"),
        from_ns=50,
        to_ns=200,
        reason="the connectivity actor restarted",
    )
    journal.add(restart, ts_ns=200)
    journal.add(frame("spot~2#1", 900), ts_ns=901)
    history = folded(journal)
    assert history.lost_since_ns("spot", "market") == 120  # not 900
    assert "spot#1" not in history.connections
    # Another client's restart gap with a look-alike name removes nothing of this one.
    journal.add(connected("spot#9"), ts_ns=950)
    other = attrs.evolve(restart, client="other", connection="spot~3#restart")
    journal.add(other, ts_ns=960)
    assert "spot#9" in folded(journal).connections


def test_an_incarnation_that_failed_before_starting_still_counts() -> None:
    journal = session()
    failed = ActorFailed(actor=ME, incarnation=2, error_type="RuntimeError", error="boom")
    journal.add(failed, ts_ns=5, source="supervisor")
    assert folded(journal).incarnations == 2


def test_a_user_session_stopped_for_good_is_lost_until_a_later_gap() -> None:
    journal = session()
    journal.add(connected("spot/user#1"), ts_ns=10)
    journal.add(frame("spot/user#1", 5_000_000), ts_ns=11)
    journal.add(dropped("spot/user#1", reconnect_in_ms=None), ts_ns=12)  # the fatal end
    journal.add(UserStreamStopped(client="spot", from_ms=5, reason="revoked", code=-2015), ts_ns=13)
    assert folded(journal).lost_since_ns("spot", "user") == 5_000_000
    journal.add(UserStreamGap(client="spot", from_ms=5, to_ms=9, reason="r"), ts_ns=14)
    assert folded(journal).lost_since_ns("spot", "user") == 1


def test_duties_subscriptions_and_unanswered_requests() -> None:
    journal = session()
    sub = SubscribeStreams(client="spot", subscriber="a", streams=("x", "y"))
    journal.add(sub, ts_ns=5, source="a")
    journal.add(
        SubscribeStreams(client="spot", subscriber="b", streams=("y",)), ts_ns=6, source="b"
    )
    journal.add(
        UnsubscribeStreams(client="spot", subscriber="a", streams=("x",)), ts_ns=7, source="a"
    )
    journal.add(
        UnsubscribeStreams(client="spot", subscriber="b", streams=("y",)), ts_ns=8, source="b"
    )
    ask = RestRequest(client="spot", call_id="c", method="GET", path="/api/v3/time")
    journal.add(ask, ts_ns=9, source="a")
    journal.add(ask, ts_ns=10, source="a")  # the same call id twice: two answers owed
    answer = RestResponse(
        client="spot", call_id="c", method="GET", path="/api/v3/time", outcome="ok", status=200
    )
    journal.add(answer, ts_ns=11, source="someone-else")  # only this actor's answers count
    journal.add(answer, ts_ns=12)
    history = folded(journal)
    assert history.wanted() == [SubscribeStreams(client="spot", subscriber="a", streams=("y",))]
    assert history.pending() == [ask]
    assert [seq for seq, _ in history.unanswered[("spot", "c")]] == [8]


def test_a_snapshot_of_another_session_is_refused() -> None:
    history = folded(session())
    assert History.from_bytes(history.to_bytes(), 1) == history
    with pytest.raises(ValueError, match="another session"):
        History.from_bytes(history.to_bytes(), 2)
    with pytest.raises(ValueError, match="not a connectivity snapshot"):
        History.from_bytes(b"{}", 1)


def test_connection_names() -> None:
    assert stream_base("spot/market~2#7") == "spot/market"
    assert stream_base("spot~3#restart") == "spot"
    assert kind_of("spot/user~2#1") == "user"
    assert kind_of("usdm/public#1") == "market"


# --------------------------------------------------------------------------- property

_CONNECTIONS = ("spot#1", "spot#2", "spot~2#1", "spot/user#1", "spot/user~2#1")


@st.composite
def journals(draw) -> list[tuple[Event, str]]:
    """Random sessions of the records the history folds (times grow with the seq)."""
    items: list[tuple[Event, str]] = []
    for _ in range(draw(st.integers(0, 40))):
        connection = draw(st.sampled_from(_CONNECTIONS))
        stream = draw(st.sampled_from(("x", "y", "z")))
        choice = draw(st.integers(0, 9))
        if choice == 0:
            items.append((connected(connection), ME))
        elif choice == 1:
            items.append((frame(connection, draw(st.integers(1, 10**6))), ME))
        elif choice == 2:
            items.append((dropped(connection, draw(st.sampled_from((None, 0, 250)))), ME))
        elif choice == 3:
            gap = StreamGap(
                client="spot",
                connection=connection,
                streams=(stream,),
                from_ns=1,
                to_ns=2,
                reason="r",
            )
            items.append((gap, ME))
        elif choice == 4:
            if draw(st.booleans()):
                items.append((UserStreamGap(client="spot", from_ms=1, to_ms=2, reason="r"), ME))
            else:
                stop = UserStreamStopped(client="spot", from_ms=draw(st.integers(0, 9)), reason="r")
                items.append((stop, ME))
        elif choice == 5:
            items.append((ActorStarted(actor=ME, incarnation=2), "supervisor"))
        elif choice == 6:
            items.append((SubscribeStreams(client="spot", subscriber="s", streams=(stream,)), "s"))
        elif choice == 7:
            items.append(
                (UnsubscribeStreams(client="spot", subscriber="s", streams=(stream,)), "s")
            )
        elif choice == 8:
            ask = RestRequest(client="spot", call_id=stream, method="GET", path="/p")
            items.append((ask, "s"))
        else:
            answer = RestResponse(
                client="spot", call_id=stream, method="GET", path="/p", outcome="ok", status=200
            )
            items.append((answer, ME))
    return items


@settings(max_examples=150, deadline=None)
@given(items=journals(), split=st.integers(0, 45))
def test_folding_from_a_checkpoint_equals_folding_the_whole_session(items, split) -> None:
    journal = session()
    for ts, (event, source) in enumerate(items, start=10):
        journal.add(event, ts_ns=ts, source=source)
    whole = folded(journal)
    cut = min(journal.seq, 2 + split)
    part = History(session_seq=1)
    fold(part, journal.store, CODEC, cut, ME)
    resumed = History.from_bytes(part.to_bytes(), 1)
    fold(resumed, journal.store, CODEC, journal.seq, ME)
    assert resumed.to_bytes() == whole.to_bytes()
    assert resumed.through_seq == journal.seq
