"""The ``tern`` command.

Exit codes: 0 success; 1 a session that did not end cleanly, a replay divergence, or a
client ``tern check`` found unusable; 2 bad usage, bad config, or a journal that is missing,
locked or unreadable.
"""

from __future__ import annotations

import argparse
import datetime
import itertools
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import orjson
import trio

from actors.binance.venues import VenueError
from actors.bus import BusClosed
from actors.config import Config, ConfigError, config_from_dict, load_config
from actors.connectivity import check_clients
from actors.projections.book import BookView
from actors.replay import ReplayReport, replay
from actors.runtime import SessionResult, event_counts, run_session
from actors.supervisor import failure_leaves
from events.codec import DecodeError, default_codec
from events.journal import JournalError, follow, open_reader
from events.registry import check_selectors, tag_matches

EXAMPLE_STRATEGY = "actors.strategies.top_of_book:TopOfBookPrinter"


class UsageError(Exception):
    """Bad input from the command line; printed and exit 2."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tern", description="An event-sourced Binance gateway built from trio actors."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser("run", help="run a supervisor session from a TOML config")
    run.add_argument("config", type=Path)
    run.add_argument("--seconds", type=float, help="stop after this many seconds")

    check = commands.add_parser(
        "check", help="connect every client of a config once and say whether it is usable"
    )
    check.add_argument("config", type=Path)

    demo = commands.add_parser("demo", help="run the demo: no keys, no network")
    demo.add_argument("--seconds", type=float, default=30.0, help="how long (default 30)")
    demo.add_argument("--journal", type=Path, help="journal directory (default: a new one)")
    demo.add_argument("--seed", type=int, default=1, help="seed of the synthetic market")

    rep = commands.add_parser("replay", help="re-run the deterministic actors on a journal")
    rep.add_argument("journal", type=Path)
    rep.add_argument("--verify", action="store_true", help="compare every output")
    rep.add_argument("--until", type=int, metavar="SEQ", help="stop after this seq")
    rep.add_argument("--actor", metavar="NAME", help="replay only this actor")

    book = commands.add_parser(
        "book", help="rebuild and print an order book at any point of a recorded session"
    )
    book.add_argument("journal", type=Path)
    book.add_argument("--instrument", required=True, metavar="ID", help="e.g. BTCUSDT.BINANCE")
    book.add_argument("--client", metavar="NAME", help="the client, when several have the ID")
    book.add_argument("--depth", type=int, default=10, metavar="N", help="levels (default 10)")
    book.add_argument("--at", type=int, metavar="SEQ", help="as of this seq (default: the end)")

    venue = commands.add_parser(
        "venue", help="run the local Binance-compatible venue", add_help=False
    )
    venue.add_argument("venue_args", nargs=argparse.REMAINDER)

    journal = commands.add_parser("journal", help="inspect a journal")
    tools = journal.add_subparsers(dest="tool", required=True, metavar="TOOL")
    stats = tools.add_parser("stats", help="segments, records, sizes, events per type")
    stats.add_argument("journal", type=Path)
    for name, text in (("show", "print records"), ("tail", "print records as they arrive")):
        tool = tools.add_parser(name, help=text)
        tool.add_argument("journal", type=Path)
        tool.add_argument(
            "--type",
            dest="types",
            action="append",
            default=[],
            metavar="TAG",
            help="an exact tag, or a prefix ending in '.' (repeatable)",
        )
        tool.add_argument("--json", action="store_true", help="one stored record per line")
        tool.add_argument("--from", dest="from_seq", type=int, default=None, metavar="SEQ")
        if name == "show":
            tool.add_argument("--until", type=int, metavar="SEQ")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``tern`` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["venue"]:
        # The venue shares no code with the gateway: it parses its own options.
        from scenarios.venue.cli import main as venue_main

        return venue_main(argv[1:])
    args = _parser().parse_args(argv)
    try:
        if args.command == "run":
            return _run(load_config(args.config), args.seconds)
        if args.command == "check":
            return _check(load_config(args.config), args.config)
        if args.command == "demo":
            return _demo(args)
        if args.command == "replay":
            return _replay(args)
        if args.command == "book":
            return _book(args)
        return _journal(args)
    except (ConfigError, JournalError, UsageError) as exc:
        print(f"tern: {exc}", file=sys.stderr)
        return 2
    except (OSError, BusClosed) as exc:
        print(f"tern: the session failed: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0


def _run(config: Config, seconds: float | None) -> int:
    result = trio.run(lambda: run_session(config, seconds=seconds, settle_collector=True))
    _print_summary(result, config)
    return result.exit_code


def _check(config: Config, path: Path) -> int:
    """``tern check``: 0 when every client is usable, 1 otherwise (reasons printed)."""
    if not config.clients:
        raise UsageError(f"{path} has no [[clients]] to check")
    try:
        results = trio.run(check_clients, config.clients)
    except VenueError as exc:
        raise UsageError(f"{path}: {exc}") from None
    for result in results:
        print("\n".join(result.lines))
        if result.usable:
            print("  => usable")
        else:
            print("  => NOT usable: " + "; ".join(result.problems))
    unusable = [result.name for result in results if not result.usable]
    if unusable:
        print(f"{len(unusable)} of {len(results)} clients not usable: {', '.join(unusable)}")
        return 1
    print(f"all {len(results)} clients usable")
    return 0


#: What the demo watches: (client, instrument id).
DEMO_BOOKS = (
    ("spot", "BTCUSDT.BINANCE"),
    ("spot", "ETHUSDT.BINANCE"),
    ("usdm", "BTCUSDT-PERP.BINANCE"),
    ("usdm", "ETHUSDT-PERP.BINANCE"),
)


def demo_config(journal_dir: Path, seed: int, urls: dict[str, Any], key: Any) -> Config:
    """The demo session: Spot and USD-M clients of a local venue (``urls``, one of its
    ``key``s), instruments, market data, book sync and the top-of-book example strategy."""
    clients = []
    for name, account_type, product in (
        ("spot", "spot", "spot"),
        ("usdm", "usdt_futures", "usdm"),
    ):
        clients.append(
            {
                "name": name,
                "account_type": account_type,
                "base_url_http": urls["rest"],
                "base_url_ws": urls["ws"][product],
                "base_url_ws_api": urls["ws_api"][product],
                "api_key": key.api_key,
                "api_secret": key.secret,
            }
        )
    return config_from_dict(
        {
            "session": {"seed": seed},
            "journal": {"dir": str(journal_dir), "fsync": "per_batch"},
            "clients": clients,
            "strategies": [
                {
                    "class": EXAMPLE_STRATEGY,
                    "name": "top-of-book",
                    "params": {"books": [list(book) for book in DEMO_BOOKS], "every_ms": 1000},
                }
            ],
        }
    )


async def demo_session(
    journal_dir: Path, seconds: float, seed: int
) -> tuple[SessionResult, Config]:
    """Start the local venue, run the demo session against it for ``seconds``; half way,
    drop a Spot BTCUSDT depth event at the venue, so the book goes stale and resyncs."""
    from scenarios.venue.config import VenueConfig
    from scenarios.venue.server import open_venue

    try:
        return await _demo_with_venue(journal_dir, seconds, seed, open_venue, VenueConfig)
    except BaseExceptionGroup as group:
        # The session's own errors (a locked or corrupt journal) come out of the venue's
        # nursery wrapped: give the caller the one error, as ``tern run`` would.
        leaves = failure_leaves(group)
        if len(leaves) == 1:
            raise leaves[0] from None
        raise


async def _demo_with_venue(
    journal_dir: Path, seconds: float, seed: int, open_venue: Any, venue_config: Any
) -> tuple[SessionResult, Config]:
    async with open_venue(venue_config(seed=seed, tick_ms=50)) as venue:
        config = demo_config(journal_dir, seed, venue.urls, venue.first_key)
        print(f"venue: {venue.urls['rest']} (Spot, USD-M and COIN-M, in this process)")

        async def gap() -> None:
            await trio.sleep(seconds / 2)
            fault = {"product": "spot", "symbol": "BTCUSDT", "skip": 1}
            async with httpx.AsyncClient(base_url=venue.urls["rest"], timeout=5) as control:
                await control.post("/_venue/faults/depth", json=fault)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(gap)
            result = await run_session(config, seconds=seconds, settle_collector=True)
            nursery.cancel_scope.cancel()
    return result, config


def _demo(args: argparse.Namespace) -> int:
    if args.seconds <= 0:
        raise UsageError(f"--seconds must be positive, got {args.seconds}")
    journal_dir = args.journal
    if journal_dir is None:
        stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
        journal_dir = Path("journal") / f"demo-{stamp}"
    print(
        f"tern demo: {args.seconds:g} s against the local Binance-compatible venue: "
        "connectivity, instruments, market data, book sync and the top-of-book strategy"
    )
    print(f"journal: {journal_dir}")
    _show_strategy_log()
    result, config = trio.run(demo_session, journal_dir, args.seconds, args.seed)
    _print_summary(result, config)
    print(f"verify it: tern replay {journal_dir} --verify")
    print(f"a book at any point: tern book {journal_dir} --instrument BTCUSDT.BINANCE")
    return result.exit_code


def _show_strategy_log() -> None:
    """Strategies' log lines on stdout (``tern.strategy``): what the demo shows."""
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("%(message)s"))
    strategy_log = logging.getLogger("tern.strategy")
    strategy_log.setLevel(logging.INFO)
    strategy_log.addHandler(handler)
    strategy_log.propagate = False


def _print_summary(result: SessionResult, config: Config) -> None:
    print(
        f"session {result.session_id} stopped: {result.reason}"
        f" ({'clean' if result.clean else 'NOT clean'})"
    )
    print(f"duration: {result.duration_s:.1f} s")
    print(f"journal: {config.journal.dir} (seq {result.first_seq}..{result.last_seq})")
    if result.recovered is not None:
        r = result.recovered
        print(f"recovered: {r.reason}; kept up to seq {r.last_seq}, cut {r.truncated_bytes} bytes")
    print("actors: " + ", ".join(result.actors))
    restarts = ", ".join(f"{name} x{count}" for name, count in sorted(result.restarts.items()))
    print(f"restarts: {restarts or 'none'}")
    if result.gave_up:
        print("gave up on: " + ", ".join(result.gave_up))
    reader = open_reader(Path(config.journal.dir))
    counts = event_counts(reader, result.first_seq, result.last_seq)
    print(f"events this session: {sum(counts.values())}")
    width = max((len(tag) for tag in counts), default=0)
    for tag, count in counts.items():
        print(f"  {tag:<{width}}  {count}")


def _replay(args: argparse.Namespace) -> int:
    if not args.journal.is_dir():
        raise UsageError(f"no journal directory at {args.journal}")
    try:
        report = replay(args.journal, verify=args.verify, until=args.until, actor=args.actor)
    except (DecodeError, ValueError) as exc:
        raise UsageError(f"cannot replay {args.journal}: {exc}") from None
    _print_replay(report, args.verify)
    return 1 if report.divergence is not None else 0


def _print_replay(report: ReplayReport, verify: bool) -> None:
    print(f"records: {report.records} (last seq {report.last_seq}), sessions: {report.sessions}")
    for name, count in sorted(report.inputs_handled.items()):
        print(f"  {name}: {count} inputs handled")
    if report.torn_tail is not None:
        tail = report.torn_tail
        print(
            f"stopped at a torn tail: {tail.segment} offset {tail.offset} ({tail.reason}); "
            f"last intact seq {tail.last_seq}"
        )
    for name, seq in report.skipped_failed:
        print(f"skipped seq {seq} for {name}: the live actor failed on it")
    for item in report.unrecorded:
        print(
            f"unrecorded: {item.actor} seq {item.seq} would publish {item.outputs} event(s) "
            "that the process never wrote (it died first)"
        )
    if not verify:
        return
    if report.divergence is None:
        print(f"verified: {report.outputs_compared} outputs identical")
        return
    d = report.divergence
    print(f"DIVERGENCE at seq {d.seq} in {d.actor}: {d.detail}")
    print("  expected (journal): " + orjson.dumps(list(d.expected)).decode())
    print("  got (replay):       " + orjson.dumps(list(d.got)).decode())


_BOOK_RECORD = b'"type":"book.'
_SESSION_RECORD = b'"type":"session.'


def _book(args: argparse.Namespace) -> int:
    """``tern book``: the book of one instrument as the journal's book events describe it."""
    if args.depth < 1:
        raise UsageError(f"--depth must be at least 1, got {args.depth}")
    reader = open_reader(args.journal)
    codec = default_codec()
    views: dict[str, BookView] = {}
    last_seq = 0
    ended = False
    for seq, payload in reader.read(1, args.at):
        last_seq = seq
        if _SESSION_RECORD in payload:
            tag = orjson.loads(payload)["event"]["type"]
            if tag == "session.started":  # a new session builds its books from nothing
                views = {client: BookView(args.instrument, client) for client in views}
                ended = False
            elif tag == "session.stopped":
                ended = True
            continue
        if _BOOK_RECORD not in payload:
            continue
        event = codec.decode(payload).event
        instrument = getattr(event, "instrument_id", None)
        client = getattr(event, "client", None)
        if instrument != args.instrument or client is None:
            continue
        if args.client is not None and client != args.client:
            continue
        view = views.get(client)
        if view is None:
            view = views[client] = BookView(args.instrument, client)
        view.apply(event)
    if not views:
        raise UsageError(
            f"no book events for {args.instrument}"
            + (f" of client {args.client}" if args.client else "")
            + f" in {args.journal} up to seq {last_seq}"
        )
    if len(views) > 1:
        raise UsageError(
            f"{args.instrument} has books of several clients ({', '.join(sorted(views))}): "
            "choose one with --client"
        )
    (view,) = views.values()
    if view.stale is not None:
        state = f"STALE ({view.stale})"
    elif not view.known:
        state = "not yet synced in this session"
    else:
        state = "in sync"
    if ended:
        state += "; the session has ended: the last book it kept"
    print(
        f"{args.instrument} ({view.client}) at seq {last_seq}: update id {view.update_id}, "
        f"{state}; {len(view.bids)} bids, {len(view.asks)} asks"
    )
    bids, asks = view.top(args.depth)
    rows = [
        (
            f"{b[1]}" if b else "",
            f"{b[0]}" if b else "",
            f"{a[0]}" if a else "",
            f"{a[1]}" if a else "",
        )
        for b, a in itertools.zip_longest(bids, asks)
    ]
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(_BOOK_HEADER)]
    print(
        "  ".join(
            h.rjust(w) if i < 2 else h.ljust(w)
            for i, (h, w) in enumerate(zip(_BOOK_HEADER, widths, strict=True))
        )
    )
    for row in rows:
        print(
            "  ".join(
                c.rjust(w) if i < 2 else c.ljust(w)
                for i, (c, w) in enumerate(zip(row, widths, strict=True))
            )
        )
    return 0


_BOOK_HEADER = ("bid size", "bid", "ask", "ask size")


def _journal(args: argparse.Namespace) -> int:
    if args.tool == "stats":
        return _stats(args.journal)
    selectors = tuple(args.types)
    try:
        check_selectors(selectors)
    except ValueError as exc:
        raise UsageError(f"--type: {exc}") from None
    from_seq = args.from_seq if args.from_seq is not None else 1
    if args.tool == "show":
        reader = open_reader(args.journal)
        for _, payload in reader.read(from_seq, args.until):
            _print_record(payload, selectors, args.json)
        if reader.tail_problem is not None:
            tail = reader.tail_problem
            print(
                f"(torn tail in {tail.segment} at offset {tail.offset}: {tail.reason})",
                file=sys.stderr,
            )
        return 0

    async def tail() -> None:
        async for _, payload in follow(args.journal, from_seq):
            _print_record(payload, selectors, args.json)
            sys.stdout.flush()

    open_reader(args.journal)  # a missing journal is an error now, not an endless wait
    trio.run(tail)
    return 0


def _print_record(payload: bytes, selectors: tuple[str, ...], as_json: bool) -> None:
    record: dict[str, Any] = orjson.loads(payload)
    tag = record["event"]["type"]
    if selectors and not tag_matches(tag, selectors):
        return
    if as_json:
        sys.stdout.write(payload.decode() + "\n")
        return
    stamp = datetime.datetime.fromtimestamp(record["ts_ns"] / 1e9, tz=datetime.UTC)
    fields = {k: v for k, v in record["event"].items() if k != "type"}
    cause = "" if record["cause"] is None else f" <-{record['cause']}"
    print(
        f"{record['seq']:>8} {stamp:%H:%M:%S.%f} {record['source']}{cause} {tag} "
        + orjson.dumps(fields).decode()
    )


def _stats(directory: Path) -> int:
    reader = open_reader(directory)
    stats = reader.stats()
    codec = default_codec()
    counts: dict[str, int] = {}
    sources: dict[str, int] = {}
    for _, payload in reader.read(1, None):
        record = codec.decode_dict(payload)
        tag = record["event"]["type"]
        counts[tag] = counts.get(tag, 0) + 1
        sources[record["source"]] = sources.get(record["source"], 0) + 1
    print(f"journal: {directory}")
    print(
        f"records: {stats.total_records}, bytes: {stats.total_bytes}, "
        f"segments: {len(stats.segments)}"
    )
    for segment in stats.segments:
        print(
            f"  {segment.name}  seq {segment.first_seq}..{segment.last_seq}  {segment.size_bytes} B"
        )
    if reader.tail_problem is not None:
        tail = reader.tail_problem
        print(f"torn tail: {tail.segment} offset {tail.offset} ({tail.reason})")
    print("events per type:")
    for tag, count in sorted(counts.items()):
        print(f"  {tag}  {count}")
    print("records per source:")
    for source, count in sorted(sources.items()):
        print(f"  {source}  {count}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
