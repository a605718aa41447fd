"""``tern venue``: run the local Binance-compatible venue until SIGINT/SIGTERM.

Once it listens it prints exactly one JSON line on stdout::

    {"rest": "http://127.0.0.1:PORT", "ws": {"spot": ..., "usdm": ..., "coinm": ...},
     "ws_api": {"spot": ..., "usdm": ..., "coinm": ...}, "api_key": ..., "api_secret": ...}

``--api-key K`` followed by one of ``--api-secret S``, ``--ed25519-public-key FILE`` or
``--rsa-public-key FILE`` registers a key; repeat the pair for more keys. With no key a fresh
HMAC pair is generated. ``--write-config PATH`` also writes a tern config whose clients point
at this venue with the first key.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs
import orjson
import trio

from scenarios.venue.config import KeySpec, VenueConfig, load_venue_config
from scenarios.venue.server import Venue, open_venue


class _KeyAction(argparse.Action):
    """Collect ``--api-key`` / secret pairs in order."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        pairs: list[dict[str, str]] = getattr(namespace, "key_pairs", None) or []
        if option_string == "--api-key":
            pairs.append({"api_key": values})
        else:
            if not pairs or len(pairs[-1]) != 1:
                parser.error(f"{option_string} must follow an --api-key")
            pairs[-1][option_string.lstrip("-").replace("-", "_")] = values
        namespace.key_pairs = pairs


def parser() -> argparse.ArgumentParser:
    result = argparse.ArgumentParser(prog="tern venue", description=__doc__.split("\n")[0])
    result.add_argument("--host", default=None)
    result.add_argument("--port", type=int, default=None)
    result.add_argument("--seed", type=int, default=None)
    result.add_argument("--config", type=Path, help="venue TOML file")
    for option in ("--api-key", "--api-secret", "--ed25519-public-key", "--rsa-public-key"):
        result.add_argument(option, action=_KeyAction, dest="key_pairs", metavar="VALUE")
    result.add_argument(
        "--write-config",
        type=Path,
        metavar="PATH",
        help="also write a tern config pointing at this venue",
    )
    return result


def build_config(args: argparse.Namespace) -> VenueConfig:
    """Merge the config file (if any) with the command line (which wins)."""
    config = load_venue_config(args.config) if args.config else VenueConfig()
    changes: dict[str, Any] = {}
    for name in ("host", "port", "seed"):
        value = getattr(args, name)
        if value is not None:
            changes[name] = value
    pairs = args.key_pairs or []
    if pairs:
        keys = []
        for pair in pairs:
            if len(pair) != 2:
                raise ValueError(
                    f"--api-key {pair['api_key']} needs one of --api-secret, "
                    "--ed25519-public-key or --rsa-public-key after it"
                )
            if "api_secret" in pair:
                keys.append(KeySpec(api_key=pair["api_key"], secret=pair["api_secret"]))
            else:
                path = Path(pair.get("ed25519_public_key") or pair["rsa_public_key"])
                try:
                    pem = path.read_bytes()
                except OSError as exc:
                    raise ValueError(f"cannot read public key {path}: {exc.strerror}") from None
                keys.append(KeySpec(api_key=pair["api_key"], public_key_pem=pem))
        changes["keys"] = tuple(keys) + tuple(config.keys)
    return attrs.evolve(config, **changes)


def tern_config(venue: Venue) -> str:
    """A tern config whose Spot, USD-M and COIN-M clients use this venue and its key."""
    key = venue.first_key
    urls = venue.urls
    lines = [
        "# Written by `tern venue --write-config`: tern's clients pointed at the local venue.",
        "[journal]",
        'dir = "journal/venue"',
        "",
    ]
    rows = [
        # Spot's user data comes over the WS-API: it has no user-stream base.
        ("spot", "spot", urls["ws"]["spot"], urls["ws_api"]["spot"], None),
        ("usdm", "usdt_futures", urls["ws"]["usdm"], urls["ws_api"]["usdm"], urls["ws"]["usdm"]),
        (
            "coinm",
            "coin_futures",
            urls["ws"]["coinm"],
            urls["ws_api"]["coinm"],
            urls["ws"]["coinm"],
        ),
    ]
    for name, account_type, ws, ws_api, ws_stream in rows:
        lines += [
            "[[clients]]",
            f"name = {json.dumps(name)}",
            f"account_type = {json.dumps(account_type)}",
            'environment = "LIVE"',
            f"base_url_http = {json.dumps(urls['rest'])}",
            f"base_url_ws = {json.dumps(ws)}",
            f"base_url_ws_api = {json.dumps(ws_api)}",
            f"api_key = {json.dumps(key.api_key)}",
        ]
        if ws_stream is not None:
            lines.insert(-1, f"base_url_ws_stream = {json.dumps(ws_stream)}")
        if key.secret is not None:
            lines.append(f"api_secret = {json.dumps(key.secret)}")
        else:
            lines.append(f"key_type = {json.dumps(key.key_type.name.lower())}")
        lines.append("")
    return "\n".join(lines)


async def serve(config: VenueConfig, write_config: Path | None) -> None:
    # The signal receiver opens before the ready line: a caller that stops the venue as soon
    # as it reads that line must get an orderly exit, not the default SIGTERM death.
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with open_venue(config) as venue:
            if write_config is not None:
                await trio.Path(write_config).write_text(tern_config(venue), encoding="utf-8")
            sys.stdout.write(orjson.dumps(venue.ready_line()).decode() + "\n")
            sys.stdout.flush()
            async for _ in signals:
                break


def main(argv: Sequence[str]) -> int:
    args = parser().parse_args(list(argv))
    try:
        config = build_config(args)
    except ValueError as exc:
        print(f"tern venue: {exc}", file=sys.stderr)
        return 2
    try:
        trio.run(serve, config, args.write_config)
    except ValueError as exc:  # a key that does not load, an instrument that does not parse
        print(f"tern venue: {exc}", file=sys.stderr)
        return 2
    return 0
