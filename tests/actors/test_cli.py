"""The ``tern`` command: exit codes, messages, journal tools, the demo."""

from __future__ import annotations

import orjson
import pytest

from actors.cli import main


@pytest.fixture(scope="module")
def demo_journal(tmp_path_factory) -> str:
    directory = tmp_path_factory.mktemp("demo") / "journal"
    assert main(["demo", "--seconds", "1", "--journal", str(directory)]) == 0
    return str(directory)


def test_the_demo_runs_against_the_venue_and_prints_books(demo_journal, capsys) -> None:
    assert main(["demo", "--seconds", "2", "--journal", demo_journal]) == 0
    out = capsys.readouterr().out
    for expected in (
        "stopped: ran for 2 s (clean)",
        "actors: timers, connectivity, instruments, market-data, book-sync, top-of-book",
        "restarts: none",
        "instrument.definition",
        "book.deltas",
        "book.resynced",
        "BTCUSDT.BINANCE        spot  in sync at update",
        "BTCUSDT-PERP.BINANCE   usdm  bid ",
        # half way the venue drops a depth event: the book says so and resyncs
        "BTCUSDT.BINANCE        spot  STALE: gap",
        "duration:",
        f"journal: {demo_journal}",
    ):
        assert expected in out
    assert main(["replay", demo_journal, "--verify"]) == 0
    out = capsys.readouterr().out
    assert "sessions: 2" in out
    assert "outputs identical" in out
    assert main(["book", demo_journal, "--instrument", "ETHUSDT-PERP.BINANCE"]) == 0
    assert "in sync; the session has ended" in capsys.readouterr().out
    # Within the second session, before its first book: the first session's book is not shown.
    from events.journal import open_reader

    starts = [
        seq
        for seq, payload in open_reader(demo_journal).read(1, None)
        if orjson.loads(payload)["event"]["type"] == "session.started"
    ]
    assert (
        main(["book", demo_journal, "--instrument", "BTCUSDT.BINANCE", "--at", str(starts[1])]) == 0
    )
    out = capsys.readouterr().out
    assert "not yet synced in this session" in out
    assert "0 bids, 0 asks" in out


def test_journal_show_json_prints_stored_records(demo_journal, capsys) -> None:
    assert main(["journal", "show", demo_journal, "--json", "--type", "timer."]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines
    for line in lines:
        record = orjson.loads(line)
        assert set(record) == {"seq", "ts_ns", "source", "cause", "v", "event"}
        assert record["event"]["type"].startswith("timer.")


def test_journal_show_text_and_exact_type(demo_journal, capsys) -> None:
    assert (
        main(["journal", "show", demo_journal, "--type", "session.started", "--until", "50"]) == 0
    )
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 1
    assert " runtime session.started " in out[0]


def test_journal_stats(demo_journal, capsys) -> None:
    assert main(["journal", "stats", demo_journal]) == 0
    out = capsys.readouterr().out
    assert "segments: 1" in out
    assert "book.snapshot" in out
    assert "book-sync" in out


def test_unknown_type_selector_is_a_usage_error(demo_journal, capsys) -> None:
    assert main(["journal", "show", demo_journal, "--type", "timer"]) == 2
    assert "matches no event type" in capsys.readouterr().err


@pytest.mark.parametrize(
    "command",
    [
        ["replay", "{journal}", "--verify"],
        ["journal", "show", "{journal}"],
        ["journal", "stats", "{journal}"],
    ],
)
def test_a_missing_journal_exits_2(tmp_path, capsys, command) -> None:
    missing = str(tmp_path / "nowhere")
    args = [part.format(journal=missing) for part in command]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "nowhere" in err


def test_bad_config_names_key_value_and_expectation(tmp_path, capsys) -> None:
    config = tmp_path / "bad.toml"
    config.write_text('[journal]\nfsync = "sometimes"\n')
    assert main(["run", str(config)]) == 2
    err = capsys.readouterr().err
    assert "'journal.fsync'" in err
    assert "'sometimes'" in err
    assert "per_batch, interval, none" in err


def test_unknown_config_keys_are_errors(tmp_path, capsys) -> None:
    config = tmp_path / "bad.toml"
    config.write_text('[journal]\nfsynk = "none"\n')
    assert main(["run", str(config)]) == 2
    assert "'journal.fsynk'" in capsys.readouterr().err


def test_a_strategy_that_does_not_import_is_a_config_error(tmp_path, capsys) -> None:
    config = tmp_path / "bad.toml"
    config.write_text('[[strategies]]\nclass = "no.such.module:Thing"\n')
    assert main(["run", str(config)]) == 2
    err = capsys.readouterr().err
    assert "'strategies[0].class'" in err
    assert "No module named 'no'" in err


def test_run_a_config_file(tmp_path, capsys, monkeypatch) -> None:
    import actors.cli

    settled: list[bool] = []
    real_run_session = actors.cli.run_session

    async def run_session(*args, **kwargs):
        settled.append(kwargs.get("settle_collector", False))
        return await real_run_session(*args, **kwargs)

    monkeypatch.setattr(actors.cli, "run_session", run_session)
    journal = tmp_path / "journal"
    config = tmp_path / "session.toml"
    config.write_text(
        f'[journal]\ndir = "{journal}"\n'
        '[synthetic]\nsymbols = ["BTCUSDT"]\ninterval_ms = 20\n'
        '[[strategies]]\nclass = "actors.strategies.example:MeanReversion"\n'
        '[strategies.params]\nsymbol = "BTCUSDT"\nwindow = 5\n'
    )
    assert main(["run", str(config), "--seconds", "0.3"]) == 0
    assert "meanreversion" in capsys.readouterr().out
    assert settled == [True]  # tern run is a one-session process: it settles the collector
    assert main(["replay", str(journal), "--verify"]) == 0


def test_a_second_writer_is_refused_clearly(tmp_path, capsys) -> None:
    from events.journal import open_file_store

    journal = tmp_path / "journal"
    with open_file_store(journal):
        assert main(["demo", "--seconds", "0.2", "--journal", str(journal)]) == 2
    assert "already open for writing" in capsys.readouterr().err


def test_a_corrupt_sealed_segment_refuses_to_start(tmp_path, capsys) -> None:
    from events.journal import FsyncPolicy, open_file_store

    journal = tmp_path / "journal"
    with open_file_store(journal, fsync=FsyncPolicy.NONE, max_segment_bytes=1024) as store:
        for seq in range(1, 101):
            store.append([(seq, b'{"filler": "' + b"x" * 40 + b'"}')])
    first = sorted(journal.glob("*.seg"))[0]
    data = bytearray(first.read_bytes())
    data[100] ^= 0xFF
    first.write_bytes(bytes(data))
    assert main(["demo", "--seconds", "0.2", "--journal", str(journal)]) == 2
    err = capsys.readouterr().err
    assert str(first) in err
    assert "offset" in err
