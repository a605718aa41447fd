"""`tern venue` from the command line: its ready line, its keys, its tern config."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from actors.config import load_config

ROOT = Path(__file__).resolve().parents[2]


def tern_venue(*args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "actors.cli", "venue", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


def stop(process: subprocess.Popen) -> int:
    process.send_signal(signal.SIGTERM)
    code = process.wait(timeout=20)
    process.stdout.close()
    process.stderr.close()
    return code


def test_ready_line_keys_and_written_config(tmp_path) -> None:
    pem = tmp_path / "ed25519.pem"
    pem.write_bytes(
        Ed25519PrivateKey.generate()
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    written = tmp_path / "tern.toml"
    process = tern_venue(
        "--api-key",
        "first",
        "--api-secret",
        "s3cret",
        "--api-key",
        "second",
        "--ed25519-public-key",
        str(pem),
        "--write-config",
        str(written),
    )
    try:
        ready = json.loads(process.stdout.readline())
    finally:
        assert stop(process) == 0
    assert set(ready) == {"rest", "ws", "ws_api", "api_key", "api_secret"}
    assert (ready["api_key"], ready["api_secret"]) == ("first", "s3cret")
    assert set(ready["ws"]) == {"spot", "usdm", "coinm"}
    assert ready["ws_api"]["usdm"].endswith("/ws-fapi/v1")
    config = load_config(written)
    assert [client.account_type.value for client in config.clients] == [
        "spot",
        "usdt_futures",
        "coin_futures",
    ]
    assert all(client.base_url_http == ready["rest"] for client in config.clients)
    assert config.clients[1].base_url_ws == ready["ws"]["usdm"]


def test_a_key_without_its_secret_is_refused() -> None:
    process = tern_venue("--api-key", "lonely")
    assert process.wait(timeout=20) == 2
    assert "needs one of --api-secret" in process.stderr.read()
    process.stdout.close()
    process.stderr.close()


def test_a_public_key_that_does_not_load_is_refused(tmp_path) -> None:
    bad = tmp_path / "bad.pem"
    bad.write_text("not a key")
    process = tern_venue("--api-key", "k", "--rsa-public-key", str(bad))
    assert process.wait(timeout=20) == 2
    assert "tern venue:" in process.stderr.read()
    process.stdout.close()
    process.stderr.close()
