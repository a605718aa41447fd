"""``make bench``: run every benchmark and print medians against their targets.

Usage: python -m benchmarks [--events N] [--runs N] [--only TEXT]
Exit status 1 when a median misses its target.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys

from benchmarks import book_feed, connectivity, market_pipeline, stream_journal, venue
from benchmarks.foundation import Result, run_all


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks")
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--only", help="run the benchmarks whose name contains this")
    args = parser.parse_args()
    print(
        f"python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} cores; "
        f"{args.events:,} events, median of {args.runs} runs"
    )
    results = run_all(events=args.events, runs=args.runs, only=args.only)
    plans = [
        (
            "venue stream fan-out",
            venue.stream_fan_out,
            20_000,
            "20 loopback clients on Spot and USD-M diff depth, trades, tops; messages/s received",
        ),
        (
            "venue REST requests",
            venue.rest_requests,
            2_000,
            "16 keep-alive connections, ping/depth/bookTicker mix; requests/s completed",
        ),
        (
            "venue order placements + cancels",
            venue.order_round_trips,
            2_000,
            "16 connections, signed Spot LIMIT place then cancel; requests/s completed",
        ),
        (
            "stream frames -> journal",
            stream_journal.frames_to_journal,
            30_000,
            "Spot depth frames over a loopback WebSocket, through the connectivity actor "
            "into a file journal (per_batch fsync); frames/s",
        ),
        (
            "book: depth frames -> exact order book",
            book_feed.single_book,
            100_000,
            "raw USD-M depthUpdate frames (~17 changes, ~25% removals) through "
            "DepthSync.apply_frame into a 1000-level-a-side book, verified; frames/s",
        ),
        (
            "book: depth frames -> 400 exact order books",
            book_feed.book_feed,
            25_000,
            "the same frames interleaved over 400 books of 1000 levels a side (a session's "
            "cache and GC load), each verified; frames/s",
        ),
        (
            "market pipeline: depth frames -> strategy",
            market_pipeline.pipeline_throughput,
            25_000,
            "200 Spot + 200 USD-M books: StreamFrame into connectivity's channel -> journal "
            "(per_batch fsync) -> book sync -> book.deltas journaled -> strategy callback; "
            "closed loop, frames/s",
        ),
    ]
    for name, bench, target, note in plans:
        if args.only is not None and args.only not in name:
            continue
        unit = (
            "frames/s" if "frames" in name else ("messages/s" if "stream" in name else "requests/s")
        )
        measured = tuple(bench() for _ in range(max(1, min(args.runs, 3))))
        results.append(Result(name, unit, measured, target, note))
    latency_plans = [
        (
            "REST client overhead",
            connectivity.rest_overhead_beyond_httpx,
            150,
            "signed GET through RestClient.call minus the same request on httpx's transport "
            "alone: admission, stamp, encode, sign, parse (p50, µs)",
        ),
        (
            "REST client + httpx over raw h11",
            connectivity.rest_overhead,
            400,
            "the same call minus a raw h11 round trip: tern's work plus httpx's (p50, µs)",
        ),
        (
            "market pipeline p99 latency at 25k frames/s",
            market_pipeline.pipeline_p99_us,
            5_000,
            "the same pipeline paced at 25,000 frames/s: frame received_ns -> on_book_deltas "
            "(p99, µs)",
        ),
    ]
    for name, bench, target, note in latency_plans:
        if args.only is not None and args.only not in name:
            continue
        measured = tuple(bench() for _ in range(max(1, min(args.runs, 3))))
        results.append(Result(name, "µs", measured, target, note, lower_is_better=True))
    if not results:
        print(f"no benchmark name contains {args.only!r}", file=sys.stderr)
        return 2
    width = max(len(r.name) for r in results)
    missed = 0
    for result in results:
        if result.unit == "µs":
            runs = ", ".join(f"{value:,.0f}" for value in sorted(result.runs))
        else:
            runs = ", ".join(f"{value / 1000:,.0f}k" for value in sorted(result.runs))
        verdict = (
            "ok" if result.met else ("ABOVE TARGET" if result.lower_is_better else "BELOW TARGET")
        )
        missed += not result.met
        print(
            f"{result.name:<{width}}  {result.median:>12,.0f} {result.unit}  "
            f"(target {result.target:,.0f}; {verdict})  runs: {runs}"
        )
        print(f"{'':<{width}}  {result.note}")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
