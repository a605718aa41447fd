"""``make bench``'s market pipeline runs end to end on a tiny feed (numbers are not checked
here: performance claims come from ``make bench`` alone)."""

from __future__ import annotations

import pytest

from benchmarks import market_pipeline


@pytest.fixture(scope="module")
def feed() -> market_pipeline.Feed:
    return market_pipeline.make_feed(2, 2, 40)


def test_the_closed_loop_delivers_every_frame_to_the_strategy(feed) -> None:
    run = market_pipeline.run(rate=None, seconds=0.5, feed=feed)
    injected = len(feed.frames) - len(feed.books)  # the first round syncs the books
    assert run.frames == injected
    # Each frame's own record and its book.deltas at least (book.top when the top moved).
    assert run.records >= 2 * injected
    assert run.channel_full == 0
    assert 0 < run.p50_us <= run.p99_us <= run.max_us


def test_a_paced_run_delivers_every_frame_with_its_latency(feed) -> None:
    run = market_pipeline.run(rate=2000, seconds=0.02, feed=feed)
    assert not run.fell_behind
    assert run.frames == len(feed.frames) - len(feed.books)
    assert run.scheduled_p99_us is not None
    assert 0 < run.p50_us <= run.p99_us <= run.max_us
