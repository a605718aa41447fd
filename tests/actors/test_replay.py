"""Replay verification: identical journals pass, any tampering is found, deaths are reported."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import orjson
import pytest

from actors.config import config_from_dict
from actors.replay import replay
from actors.runtime import run_session
from events.journal import FsyncPolicy, open_file_store, open_reader


def rewrite(source: Path, target: Path, edit, *, stop_after: int | None = None) -> None:
    """Copy a journal record by record, letting ``edit`` change each stored record dict."""
    records = list(open_reader(source).read(1, stop_after))
    with open_file_store(target, fsync=FsyncPolicy.NONE) as store:
        store.append([(seq, orjson.dumps(edit(orjson.loads(payload)))) for seq, payload in records])


@pytest.fixture
async def recorded(tmp_path, autojump_clock) -> Path:
    directory = tmp_path / "recorded"
    config = config_from_dict(
        {
            "session": {"seed": 11},
            "journal": {"dir": str(directory), "fsync": "none"},
            "synthetic": {"symbols": ["BTCUSDT"], "interval_ms": 100},
            "strategies": [
                {
                    "class": "tests.actors.sample_strategies:EchoOrders",
                    "name": "echo",
                }
            ],
        }
    )
    with open_file_store(directory, fsync=FsyncPolicy.NONE) as store:
        await run_session(config, store=store, seconds=1.05, handle_signals=False)
    return directory


def records(directory: Path) -> list[dict]:
    return [orjson.loads(p) for _, p in open_reader(directory).read(1, None)]


async def test_an_untouched_journal_verifies(recorded, autojump_clock) -> None:
    report = replay(recorded, verify=True)
    assert report.identical
    assert report.sessions == 1
    assert report.outputs_compared == 10 + 10 + 1  # prices, orders, the timer schedule
    assert report.inputs_handled == {"synthetic-market": 11, "echo": 11}
    assert report.unrecorded == ()


async def test_a_changed_output_is_the_first_divergence(recorded, tmp_path, autojump_clock) -> None:
    orders = [r for r in records(recorded) if r["event"]["type"] == "order.submit"]
    victim = orders[4]

    def edit(record: dict) -> dict:
        if record["seq"] == victim["seq"]:
            record["event"]["price"] = str(Decimal(record["event"]["price"]) + 1)
        return record

    rewrite(recorded, tmp_path / "tampered", edit)
    report = replay(tmp_path / "tampered", verify=True)
    divergence = report.divergence
    assert divergence is not None
    assert divergence.seq == victim["cause"]
    assert divergence.actor == "echo"
    assert divergence.expected[0]["price"] != divergence.got[0]["price"]
    assert divergence.got[0]["price"] == victim["event"]["price"]


async def test_a_missing_output_is_a_divergence(recorded, tmp_path, autojump_clock) -> None:
    orders = [r for r in records(recorded) if r["event"]["type"] == "order.submit"]
    victim = orders[2]

    def edit(record: dict) -> dict:
        if record["seq"] == victim["seq"]:
            record["source"] = "someone-else"
        return record

    rewrite(recorded, tmp_path / "tampered", edit)
    divergence = replay(tmp_path / "tampered", verify=True).divergence
    assert divergence is not None
    assert divergence.seq == victim["cause"]
    assert divergence.expected == ()
    assert "does not hold" in divergence.detail


async def test_an_extra_output_is_a_divergence(recorded, tmp_path, autojump_clock) -> None:
    prices = [r for r in records(recorded) if r["event"]["type"] == "demo.price"]

    def edit(record: dict) -> dict:
        if record["seq"] == prices[3]["seq"]:
            record["source"] = "echo"  # pretend echo published a price
        return record

    rewrite(recorded, tmp_path / "tampered", edit)
    divergence = replay(tmp_path / "tampered", verify=True).divergence
    assert divergence is not None
    assert divergence.actor in {"echo", "synthetic-market"}
    assert divergence.seq <= prices[3]["cause"]


async def test_outputs_never_written_before_a_death_are_reported_not_divergent(
    recorded, tmp_path, autojump_clock
) -> None:
    # Cut the journal right after a price input: its order was never written, and the
    # session has no session.stopped, as after kill -9.
    price = [r for r in records(recorded) if r["event"]["type"] == "demo.price"][5]
    rewrite(recorded, tmp_path / "died", lambda r: r, stop_after=price["seq"])
    report = replay(tmp_path / "died", verify=True)
    assert report.identical
    assert [(u.actor, u.seq, u.outputs) for u in report.unrecorded] == [("echo", price["seq"], 1)]


async def test_until_and_actor_limit_the_replay(recorded, autojump_clock) -> None:
    report = replay(recorded, verify=True, until=20, actor="echo")
    assert report.identical
    assert report.last_seq == 20
    assert set(report.inputs_handled) == {"echo"}
    assert report.unrecorded == ()
    with pytest.raises(ValueError, match="no deterministic actor named 'nobody'"):
        replay(recorded, actor="nobody")


async def test_replay_never_writes(recorded, autojump_clock) -> None:
    before = {p.name: (p.stat().st_size, p.stat().st_mtime_ns) for p in recorded.iterdir()}
    replay(recorded, verify=True)
    after = {p.name: (p.stat().st_size, p.stat().st_mtime_ns) for p in recorded.iterdir()}
    assert before == after


async def test_replay_stops_at_a_torn_tail_and_says_so(recorded, autojump_clock, capsys) -> None:
    from actors.cli import main

    last_segment = sorted(recorded.glob("*.seg"))[-1]
    size = last_segment.stat().st_size
    with last_segment.open("ab") as segment:
        segment.write(b"\x4e\x7e\x00\x00\x40\x00\x00\x00torn")
    report = replay(recorded, verify=True)
    assert report.identical
    assert report.torn_tail is not None
    assert report.torn_tail.offset == size
    assert report.records == report.torn_tail.last_seq
    assert main(["replay", str(recorded), "--verify"]) == 0
    assert f"stopped at a torn tail: {last_segment.name} offset {size}" in capsys.readouterr().out
    assert last_segment.stat().st_size == size + 12, "replay must not repair the journal"


async def record_session(directory: Path, strategies: list, **extra) -> None:
    config = config_from_dict(
        {
            "session": {"seed": 5},
            "journal": {"dir": str(directory), "fsync": "none"},
            "synthetic": {"symbols": ["BTCUSDT"], "interval_ms": 100},
            "strategies": strategies,
            **extra,
        }
    )
    with open_file_store(directory, fsync=FsyncPolicy.NONE) as store:
        await run_session(config, store=store, seconds=2.05, handle_signals=False)


def echo(restart: str = "permanent", **params) -> dict:
    return {
        "class": "tests.actors.sample_strategies:EchoOrders",
        "name": "echo",
        "restart": restart,
        "params": params,
    }


@pytest.mark.parametrize(
    ("restart", "backoff_ms"),
    [("temporary", 100), ("transient", 100), ("permanent", 100), ("permanent", 60_000)],
)
async def test_failures_without_a_later_restart_still_verify(
    tmp_path, autojump_clock, restart, backoff_ms
) -> None:
    directory = tmp_path / "journal"
    await record_session(
        directory,
        [echo(restart, fail_steps=[4])],
        supervisor={"backoff_initial_ms": backoff_ms, "backoff_max_ms": max(backoff_ms, 10_000)},
    )
    tags = [r["event"]["type"] for r in records(directory)]
    assert "actor.failed" in tags
    report = replay(directory, verify=True)
    assert report.identical, report.divergence
    assert len(report.skipped_failed) == 1


async def test_until_between_a_failure_and_its_record_verifies(tmp_path, autojump_clock) -> None:
    directory = tmp_path / "journal"
    await record_session(directory, [echo(fail_steps=[4])])
    failed = next(r for r in records(directory) if r["event"]["type"] == "actor.failed")
    poison = failed["event"]["input_seq"]
    for until in range(poison, failed["seq"] + 1):
        assert replay(directory, verify=True, until=until).identical, until


async def test_an_unrecorded_failure_at_a_death_is_not_a_divergence(
    tmp_path, autojump_clock
) -> None:
    directory = tmp_path / "journal"
    await record_session(directory, [echo(fail_steps=[4])])
    failed = next(r for r in records(directory) if r["event"]["type"] == "actor.failed")
    # The process died after the handler raised, before actor.failed was written.
    rewrite(directory, tmp_path / "died", lambda r: r, stop_after=failed["seq"] - 1)
    assert replay(tmp_path / "died", verify=True).identical


async def test_a_failure_live_never_had_is_a_divergence(tmp_path, autojump_clock) -> None:
    directory = tmp_path / "journal"
    await record_session(directory, [echo(fail_steps=[4])])

    def forget_the_failure(record: dict) -> dict:
        if record["event"]["type"] == "actor.failed":
            record["event"]["input_seq"] = None
        return record

    rewrite(directory, tmp_path / "tampered", forget_the_failure)
    divergence = replay(tmp_path / "tampered", verify=True).divergence
    assert divergence is not None
    assert "replay raised ZeroDivisionError" in divergence.detail


async def test_an_actor_without_subscriptions_sees_everything_in_replay_too(
    tmp_path, autojump_clock
) -> None:
    directory = tmp_path / "journal"
    await record_session(
        directory, [{"class": "tests.actors.sample_strategies:SeesEverything", "name": "all"}]
    )
    outputs = [r for r in records(directory) if r["source"] == "all"]
    assert len(outputs) == 20
    report = replay(directory, verify=True)
    assert report.identical, report.divergence
    assert report.outputs_compared >= 20


async def test_a_journal_without_a_single_readable_record_is_an_error(tmp_path) -> None:
    from events.journal import JournalError

    directory = tmp_path / "garbage"
    directory.mkdir()
    (directory / "00000000000000000001.seg").write_bytes(b"this is not a journal")
    with pytest.raises(JournalError, match="holds no readable record"):
        replay(directory)
