"""The explicit list of every journaled event class. Tags are asserted unique at import."""

from __future__ import annotations

from events.base import Event
from events.connectivity import (
    ClockOffset,
    IpBanned,
    RateLimited,
    RestRequest,
    RestResponse,
    StreamConnected,
    StreamDisconnected,
    StreamFrame,
    StreamGap,
    StreamResubscribed,
    SubscribeStreams,
    UnsubscribeStreams,
    UserStreamGap,
    UserStreamStarted,
    UserStreamStopped,
)
from events.demo import SyntheticPrice
from events.market import (
    Bar,
    BookDeltas,
    BookResynced,
    BookSnapshot,
    BookStale,
    BookSyncFailed,
    FundingRate,
    HistoryChunk,
    HistoryDone,
    IndexPrice,
    Instrument,
    InstrumentSkipped,
    InstrumentStatus,
    InstrumentsUnavailable,
    MarkPrice,
    QuoteTick,
    RequestHistory,
    SubscribeMarketData,
    Ticker,
    TopOfBook,
    TradeTick,
    UnsubscribeMarketData,
)
from events.orders import CancelOrder, SubmitOrder
from events.system import (
    ActorFailed,
    ActorGaveUp,
    ActorRestarted,
    ActorStarted,
    ActorStopped,
    CancelTimer,
    JournalRecovered,
    ScheduleTimer,
    SessionStarted,
    SessionStopped,
    TimerFired,
)

EVENT_CLASSES: tuple[type[Event], ...] = (
    SessionStarted,
    SessionStopped,
    ActorStarted,
    ActorStopped,
    ActorFailed,
    ActorRestarted,
    ActorGaveUp,
    ScheduleTimer,
    CancelTimer,
    TimerFired,
    JournalRecovered,
    SyntheticPrice,
    SubmitOrder,
    CancelOrder,
    RestRequest,
    RestResponse,
    SubscribeStreams,
    UnsubscribeStreams,
    StreamFrame,
    StreamConnected,
    StreamDisconnected,
    StreamResubscribed,
    StreamGap,
    RateLimited,
    IpBanned,
    ClockOffset,
    UserStreamStarted,
    UserStreamGap,
    UserStreamStopped,
    Instrument,
    InstrumentSkipped,
    InstrumentStatus,
    InstrumentsUnavailable,
    SubscribeMarketData,
    UnsubscribeMarketData,
    RequestHistory,
    TradeTick,
    QuoteTick,
    Bar,
    Ticker,
    MarkPrice,
    IndexPrice,
    FundingRate,
    HistoryChunk,
    HistoryDone,
    BookSnapshot,
    BookDeltas,
    TopOfBook,
    BookStale,
    BookResynced,
    BookSyncFailed,
)


def _index(classes: tuple[type[Event], ...]) -> dict[str, type[Event]]:
    by_tag: dict[str, type[Event]] = {}
    for cls in classes:
        tag = cls.__dict__.get("TAG")
        if not tag or tag != tag.lower() or "." not in tag:
            raise AssertionError(f"{cls.__qualname__} needs a dotted lowercase TAG, got {tag!r}")
        if tag in by_tag:
            raise AssertionError(
                f"event tag {tag!r} is used by both {by_tag[tag].__qualname__} "
                f"and {cls.__qualname__}"
            )
        if cls.VERSION < 1:
            raise AssertionError(f"{cls.__qualname__}.VERSION must be >= 1")
        by_tag[tag] = cls
    return by_tag


BY_TAG: dict[str, type[Event]] = _index(EVENT_CLASSES)


def tag_matches(tag: str, selectors: tuple[str, ...]) -> bool:
    """Whether ``tag`` is selected: an exact tag, or a prefix ending in ``.``."""
    for selector in selectors:
        if selector.endswith("."):
            if tag.startswith(selector):
                return True
        elif tag == selector:
            return True
    return False


def selects(tag: str, selectors: tuple[str, ...]) -> bool:
    """Whether a subscription with ``selectors`` receives ``tag``: no selectors means all."""
    return not selectors or tag_matches(tag, selectors)


def check_selectors(selectors: tuple[str, ...]) -> None:
    """Raise ValueError naming any selector that matches no registered tag."""
    for selector in selectors:
        if not any(tag_matches(tag, (selector,)) for tag in BY_TAG):
            known = ", ".join(sorted(BY_TAG))
            raise ValueError(
                f"{selector!r} matches no event type; use an exact tag or a prefix ending "
                f"in '.' (known tags: {known})"
            )
