"""kill -9 of a writing session, then a restart: a gap-free prefix survives, the repair is
journaled as journal.recovered, and replay verification still passes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest

from events.journal import open_reader

ROOT = Path(__file__).resolve().parent.parent


def tern(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "actors.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        check=False,
    )


def write_config(tmp_path: Path) -> Path:
    config = tmp_path / "session.toml"
    config.write_text(
        f'[journal]\ndir = "{tmp_path / "journal"}"\nfsync = "per_batch"\n'
        '[synthetic]\nsymbols = ["BTCUSDT", "ETHUSDT"]\ninterval_ms = 2\n'
        '[[strategies]]\nclass = "actors.strategies.example:MeanReversion"\n'
        '[strategies.params]\nsymbol = "BTCUSDT"\nwindow = 5\nthreshold_bps = 0.1\n'
    )
    return config


def written(journal: Path) -> int:
    """The last seq in the journal, 0 before the first segment exists."""
    if not (journal.exists() and any(journal.glob("*.seg"))):
        return 0
    return open_reader(journal).last_seq


def records(directory: Path) -> list[dict]:
    return [orjson.loads(payload) for _, payload in open_reader(directory).read(1, None)]


def kill_while_writing(config: Path, journal: Path, at_least: int) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "actors.cli", "run", str(config), "--seconds", "120"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if process.poll() is not None:
                pytest.fail(f"tern run exited early: {process.stderr.read().decode()}")
            if written(journal) >= at_least:
                break
            time.sleep(0.05)
        else:
            pytest.fail("the session wrote too little within 60 s")
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
        process.stderr.close()


@pytest.mark.parametrize("torn", [False, True], ids=["clean-kill", "torn-write"])
def test_kill_9_then_restart_recovers_and_replays(tmp_path: Path, torn: bool) -> None:
    config = write_config(tmp_path)
    journal = tmp_path / "journal"
    kill_while_writing(config, journal, at_least=500)
    before = records(journal)
    assert [r["seq"] for r in before] == list(range(1, len(before) + 1))
    assert before[-1]["event"]["type"] != "session.stopped"
    if torn:
        # A write the kill interrupted: half a frame at the end of the last segment.
        last_segment = sorted(journal.glob("*.seg"))[-1]
        with last_segment.open("ab") as segment:
            segment.write(b"\x4e\x7e\x00\x00\xff\x00\x00\x00partial")

    restarted = tern("run", str(config), "--seconds", "0.5")
    assert restarted.returncode == 0, restarted.stderr
    assert "recovered:" in restarted.stdout

    after = records(journal)
    assert [r["seq"] for r in after] == list(range(1, len(after) + 1))
    assert after[: len(before)] == before, "recovery must keep exactly the prefix"
    recovered = after[len(before)]
    assert recovered["event"]["type"] == "journal.recovered"
    assert recovered["event"]["last_seq"] == len(before)
    assert (recovered["event"]["truncated_bytes"] > 0) is torn
    assert after[len(before) + 1]["event"]["type"] == "session.started"
    assert after[-1]["event"]["type"] == "session.stopped"

    verified = tern("replay", str(journal), "--verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "outputs identical" in verified.stdout


def test_replay_of_a_missing_journal_exits_2(tmp_path: Path) -> None:
    result = tern("replay", str(tmp_path / "absent"), "--verify")
    assert result.returncode == 2
    assert "absent" in result.stderr


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_stops_the_session_in_order(tmp_path: Path, signum: int) -> None:
    config = write_config(tmp_path)
    journal = tmp_path / "journal"
    process = subprocess.Popen(
        [sys.executable, "-m", "actors.cli", "run", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    deadline = time.monotonic() + 60
    while written(journal) < 50:
        assert time.monotonic() < deadline, "the session never started writing"
        time.sleep(0.05)
    process.send_signal(signum)
    out, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    name = signal.Signals(signum).name
    assert f"stopped: signal {name} (clean)" in out
    last = records(journal)[-1]
    assert last["event"]["type"] == "session.stopped"
    assert last["event"]["reason"] == f"signal {name}"
    assert tern("replay", str(journal), "--verify").returncode == 0


def test_journal_tail_follows_a_growing_journal(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    journal = tmp_path / "journal"
    assert tern("run", str(config), "--seconds", "0.2").returncode == 0
    tail = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "actors.cli",
            "journal",
            "tail",
            str(journal),
            "--json",
            "--type",
            "session.",
        ],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        first = orjson.loads(tail.stdout.readline())
        second = orjson.loads(tail.stdout.readline())
        assert [first["event"]["type"], second["event"]["type"]] == [
            "session.started",
            "session.stopped",
        ]
        assert tern("run", str(config), "--seconds", "0.2").returncode == 0
        third = orjson.loads(tail.stdout.readline())
        assert third["event"]["type"] == "session.started"
        assert third["seq"] > second["seq"]
    finally:
        tail.kill()
        tail.wait(timeout=10)
        tail.stdout.close()
