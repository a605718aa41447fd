"""``tern check CONFIG`` against the local venue: usable clients, rejected keys, bad configs.

The venue runs in-process on a loopback port; ``tern`` runs in a worker thread (it starts
its own trio loop), exactly as from the command line.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import pytest
import trio
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from actors.cli import main
from scenarios.venue.config import KeySpec, VenueConfig
from scenarios.venue.server import open_venue

DEADLINE = 30
PRODUCTS = (
    ("spot", "spot", "spot"),
    ("usdm", "usdt_futures", "usdm"),
    ("coinm", "coin_futures", "coinm"),
)


def write_config(
    path: Path,
    urls: dict[str, Any],
    *,
    api_key: str,
    api_secret: str | None = None,
    products: tuple[tuple[str, str, str], ...] = PRODUCTS,
    **extra: str,
) -> Path:
    """A tern config whose clients point at the venue at ``urls``."""
    lines = ["[journal]", f"dir = {json.dumps(str(path.parent / 'journal'))}", ""]
    for name, account_type, surface in products:
        lines += [
            "[[clients]]",
            f"name = {json.dumps(name)}",
            f"account_type = {json.dumps(account_type)}",
            f"base_url_http = {json.dumps(urls['rest'])}",
            f"base_url_ws = {json.dumps(urls['ws'][surface])}",
            f"base_url_ws_api = {json.dumps(urls['ws_api'][surface])}",
            f"api_key = {json.dumps(api_key)}",
        ]
        if api_secret is not None:
            lines.append(f"api_secret = {json.dumps(api_secret)}")
        lines += [f"{key} = {json.dumps(value)}" for key, value in extra.items()]
        lines.append("")
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


async def tern(*argv: str) -> int:
    return await trio.to_thread.run_sync(main, list(argv))


@pytest.fixture
async def venue():
    with trio.fail_after(DEADLINE):
        async with open_venue(VenueConfig(seed=3, tick_ms=50)) as running:
            yield running


async def test_every_client_usable_exits_0(venue, tmp_path, capsys) -> None:
    key = venue.first_key
    config = write_config(
        tmp_path / "tern.toml", venue.urls, api_key=key.api_key, api_secret=key.secret
    )
    with trio.fail_after(DEADLINE):
        assert await tern("check", str(config)) == 0
    out = capsys.readouterr().out
    for name, account_type, _ in PRODUCTS:
        assert f"client {name}: {account_type} on LIVE" in out
    assert out.count("=> usable") == 3
    assert "all 3 clients usable" in out
    assert venue.urls["rest"] in out
    assert "clock offset:" in out
    assert "canTrade yes" in out
    assert "/api/v3/account" in out
    assert "/fapi/v2/account" in out
    assert "/dapi/v1/account" in out
    assert "per 1m (spot pool" in out
    assert "HMAC" in out
    assert key.secret not in out
    assert key.api_key not in out


async def test_a_wrong_secret_names_minus_1022(venue, tmp_path, capsys) -> None:
    key = venue.first_key
    config = write_config(
        tmp_path / "tern.toml",
        venue.urls,
        api_key=key.api_key,
        api_secret="x" * 64,
        products=PRODUCTS[:1],
    )
    with trio.fail_after(DEADLINE):
        assert await tern("check", str(config)) == 1
    out = capsys.readouterr().out
    assert "NOT usable" in out
    assert "-1022" in out
    assert "the API secret does not match the API key" in out
    assert "1 of 1 clients not usable: spot" in out


async def test_an_unknown_key_names_minus_2015(venue, tmp_path, capsys) -> None:
    config = write_config(
        tmp_path / "tern.toml",
        venue.urls,
        api_key="k" * 64,
        api_secret="s" * 64,
        products=PRODUCTS[1:2],
    )
    with trio.fail_after(DEADLINE):
        assert await tern("check", str(config)) == 1
    out = capsys.readouterr().out
    assert "-2015" in out
    assert "usdt_futures" in out
    assert "1 of 1 clients not usable: usdm" in out


async def test_an_unreachable_venue_says_cannot_reach(tmp_path, capsys) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    base = f"127.0.0.1:{port}"
    urls = {
        "rest": f"http://{base}",
        "ws": {"spot": f"ws://{base}", "usdm": f"ws://{base}/usdm", "coinm": f"ws://{base}/coinm"},
        "ws_api": {"spot": f"ws://{base}/ws-api/v3", "usdm": f"ws://{base}/ws-fapi/v1"},
    }
    config = write_config(
        tmp_path / "tern.toml", urls, api_key="k" * 64, api_secret="s" * 64, products=PRODUCTS[:2]
    )
    with trio.fail_after(DEADLINE):
        assert await tern("check", str(config)) == 1
    out = capsys.readouterr().out
    assert out.count(f"cannot reach http://{base}") == 2
    assert "2 of 2 clients not usable: spot, usdm" in out


async def test_asymmetric_keys_are_named_and_rsa_is_advised_against(tmp_path, capsys) -> None:
    ed_key = ed25519.Ed25519PrivateKey.generate()
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    keys = {}
    for name, private in (("ed", ed_key), ("rsa", rsa_key)):
        pem = private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        (tmp_path / f"{name}.pem").write_bytes(pem)
        public = private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        keys[name] = KeySpec(api_key=f"{name}-key-" + "0" * 40, public_key_pem=public)
    with trio.fail_after(DEADLINE):
        async with open_venue(VenueConfig(keys=tuple(keys.values()))) as venue:
            outputs = {}
            for name, key_type in (("ed", "ed25519"), ("rsa", "rsa")):
                config = write_config(
                    tmp_path / f"{name}.toml",
                    venue.urls,
                    api_key=keys[name].api_key,
                    products=PRODUCTS[:1],
                    private_key_file=str(tmp_path / f"{name}.pem"),
                    key_type=key_type,
                )
                assert await tern("check", str(config)) == 0
                outputs[name] = capsys.readouterr().out
    assert "key:             Ed25519" in outputs["ed"]
    assert "key:             RSA" in outputs["rsa"]
    assert "Binance recommends Ed25519" in outputs["rsa"]
    assert "BEGIN" not in outputs["rsa"] + outputs["ed"]


def test_a_bad_config_exits_2(tmp_path, capsys) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[[clients]]\naccount_type = "margin"\n', encoding="utf-8")
    assert main(["check", str(bad)]) == 2
    assert "clients[0].account_type" in capsys.readouterr().err

    empty = tmp_path / "empty.toml"
    empty.write_text("", encoding="utf-8")
    assert main(["check", str(empty)]) == 2
    assert "no [[clients]]" in capsys.readouterr().err

    # A product Binance does not offer where the client points is a config error too.
    demo = tmp_path / "demo.toml"
    demo.write_text(
        '[[clients]]\naccount_type = "coin_futures"\nenvironment = "DEMO"\n', encoding="utf-8"
    )
    assert main(["check", str(demo)]) == 2
    assert "not available" in capsys.readouterr().err

    assert main(["check", str(tmp_path / "missing.toml")]) == 2


async def test_the_config_tern_venue_writes_passes_the_check(venue, tmp_path, capsys) -> None:
    from scenarios.venue.cli import tern_config

    path = tmp_path / "tern.toml"
    text = tern_config(venue).replace('"journal/venue"', json.dumps(str(tmp_path / "journal")))
    path.write_text(text, encoding="utf-8")
    assert await tern("check", str(path)) == 0, capsys.readouterr().out
