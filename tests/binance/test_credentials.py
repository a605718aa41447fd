"""Credentials from the config or the environment's variables; deprecations; no leaks."""

from __future__ import annotations

import warnings

import pytest

from actors.binance.credentials import (
    Credentials,
    CredentialsError,
    CredentialWarning,
    load_credentials,
    variable_names,
)
from actors.config import AccountType, ClientConfig, Environment

SPOT = AccountType.SPOT
USDM = AccountType.USDT_FUTURES
COINM = AccountType.COIN_FUTURES
LIVE, DEMO, TESTNET = Environment.LIVE, Environment.DEMO, Environment.TESTNET
KEY = "k" * 60 + "KEY1"
SECRET = "s" * 60 + "SEC1"


def client(account_type=SPOT, environment=LIVE, **kwargs):
    return ClientConfig(name="c1", account_type=account_type, environment=environment, **kwargs)


def load(config, environ, **kwargs):
    """load_credentials with warnings turned into failures unless a test expects them."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", CredentialWarning)
        return load_credentials(config, environ, **kwargs)


def test_config_values_come_first():
    environ = {"BINANCE_API_KEY": "other", "BINANCE_API_SECRET": "other"}
    creds = load(client(api_key=KEY, api_secret=SECRET), environ)
    assert (creds.api_key, creds.api_secret, creds.source) == (KEY, SECRET, "config")


@pytest.mark.parametrize(
    ("account_type", "environment", "us", "key_var", "secret_var"),
    [
        (SPOT, LIVE, False, "BINANCE_API_KEY", "BINANCE_API_SECRET"),
        (USDM, LIVE, False, "BINANCE_API_KEY", "BINANCE_API_SECRET"),
        (COINM, LIVE, False, "BINANCE_API_KEY", "BINANCE_API_SECRET"),
        (SPOT, LIVE, True, "BINANCE_US_API_KEY", "BINANCE_US_API_SECRET"),
        (SPOT, DEMO, False, "BINANCE_DEMO_API_KEY", "BINANCE_DEMO_API_SECRET"),
        (USDM, DEMO, False, "BINANCE_DEMO_API_KEY", "BINANCE_DEMO_API_SECRET"),
        (SPOT, TESTNET, False, "BINANCE_TESTNET_API_KEY", "BINANCE_TESTNET_API_SECRET"),
        (
            COINM,
            TESTNET,
            False,
            "BINANCE_FUTURES_TESTNET_API_KEY",
            "BINANCE_FUTURES_TESTNET_API_SECRET",
        ),
    ],
)
def test_each_environment_reads_its_own_variables(
    account_type, environment, us, key_var, secret_var
):
    names = variable_names(environment, account_type, us)
    decoys = {name: "decoy" for name in names if "ED25519" not in name}
    decoys.update({"BINANCE_API_KEY": "live", "BINANCE_API_SECRET": "live"})
    environ = decoys | {key_var: f" {KEY}\n", secret_var: SECRET}
    creds = load(client(account_type, environment, us=us), environ)
    assert (creds.api_key, creds.api_secret) == (KEY, SECRET)  # surrounding whitespace dropped
    assert creds.source == f"{key_var}, {secret_var}"
    assert creds.notices == ()
    assert names[:2] == (key_var, secret_var)


def test_binance_us_falls_back_to_the_live_variables():
    creds = load(client(us=True), {"BINANCE_API_KEY": KEY, "BINANCE_API_SECRET": SECRET})
    assert creds.source == "BINANCE_API_KEY, BINANCE_API_SECRET"


def test_key_and_secret_always_come_from_one_pair():
    environ = {"BINANCE_US_API_KEY": "us-key", "BINANCE_API_SECRET": SECRET}
    with pytest.raises(CredentialsError, match="without its partner"):
        load(client(us=True), environ)


def test_config_key_with_secret_from_the_environment():
    creds = load(client(USDM, DEMO, api_key=KEY), {"BINANCE_DEMO_API_SECRET": SECRET})
    assert (creds.api_key, creds.api_secret) == (KEY, SECRET)
    assert creds.source == "config, BINANCE_DEMO_API_SECRET"


def test_missing_credentials_name_every_variable_looked_at_and_no_value():
    environ = {"BINANCE_FUTURES_TESTNET_API_KEY": "partial-value-xyz", "BINANCE_API_SECRET": "x"}
    with pytest.raises(CredentialsError) as caught:
        load(client(USDM, TESTNET), environ)
    message = str(caught.value)
    assert "'c1' (usdt_futures on TESTNET)" in message
    assert "no api_key and api_secret" in message
    for name in (
        "BINANCE_FUTURES_TESTNET_API_KEY",
        "BINANCE_FUTURES_TESTNET_API_SECRET",
        "BINANCE_DEMO_API_KEY",
        "BINANCE_DEMO_API_SECRET",
        "BINANCE_FUTURES_TESTNET_ED25519_API_KEY",
    ):
        assert name in message
    assert "set, but without its partner: BINANCE_FUTURES_TESTNET_API_KEY" in message
    assert "partial-value-xyz" not in message


def test_empty_values_count_as_unset():
    with pytest.raises(CredentialsError, match="BINANCE_API_KEY"):
        load(client(api_key="  "), {"BINANCE_API_KEY": "", "BINANCE_API_SECRET": SECRET})


# --- deprecated and removed variables ---------------------------------------------------


@pytest.mark.parametrize(
    ("environment", "prefix", "target"),
    [
        (LIVE, "BINANCE_ED25519", "BINANCE_API_KEY, BINANCE_API_SECRET"),
        (TESTNET, "BINANCE_TESTNET_ED25519", "BINANCE_TESTNET_API_KEY, BINANCE_TESTNET_API_SECRET"),
    ],
)
def test_removed_ed25519_variables_fail_on_spot_naming_the_rename(environment, prefix, target):
    environ = {f"{prefix}_API_KEY": KEY, f"{prefix}_API_SECRET": SECRET}
    with pytest.raises(CredentialsError) as caught:
        load(client(SPOT, environment), environ)
    message = str(caught.value)
    assert f"{prefix}_API_KEY, {prefix}_API_SECRET removed for Spot" in message
    assert f"rename them to {target}" in message
    assert SECRET not in message
    assert KEY not in message


def test_removed_variables_beside_working_ones_are_ignored_with_a_warning():
    environ = {
        "BINANCE_API_KEY": KEY,
        "BINANCE_API_SECRET": SECRET,
        "BINANCE_ED25519_API_KEY": "old",
        "BINANCE_ED25519_API_SECRET": "old",
    }
    with pytest.warns(CredentialWarning, match="BINANCE_ED25519_API_SECRET ignored"):
        creds = load_credentials(client(SPOT), environ)
    assert creds.api_secret == SECRET
    assert len(creds.notices) == 1


@pytest.mark.parametrize(
    ("account_type", "environment", "prefix"),
    [
        (USDM, LIVE, "BINANCE_ED25519"),
        (COINM, LIVE, "BINANCE_ED25519"),
        (USDM, TESTNET, "BINANCE_FUTURES_TESTNET_ED25519"),
        (COINM, TESTNET, "BINANCE_FUTURES_TESTNET_ED25519"),
    ],
)
def test_ed25519_variables_still_work_for_futures_with_a_warning(account_type, environment, prefix):
    environ = {f"{prefix}_API_KEY": KEY, f"{prefix}_API_SECRET": SECRET}
    with pytest.warns(CredentialWarning, match="deprecated for futures") as caught:
        creds = load_credentials(client(account_type, environment), environ)
    assert (creds.api_key, creds.api_secret) == (KEY, SECRET)
    assert "rename them to" in creds.notices[0]
    assert all(SECRET not in str(w.message) for w in caught)


def test_usdm_futures_testnet_variables_are_deprecated_for_demo():
    environ = {
        "BINANCE_FUTURES_TESTNET_API_KEY": KEY,
        "BINANCE_FUTURES_TESTNET_API_SECRET": SECRET,
    }
    with pytest.warns(CredentialWarning, match='environment = "DEMO"'):
        creds = load_credentials(client(USDM, TESTNET), environ)
    assert creds.api_key == KEY


def test_usdm_testnet_takes_demo_credentials_silently():
    environ = {"BINANCE_DEMO_API_KEY": KEY, "BINANCE_DEMO_API_SECRET": SECRET}
    assert load(client(USDM, TESTNET), environ).source == (
        "BINANCE_DEMO_API_KEY, BINANCE_DEMO_API_SECRET"
    )


def test_coinm_testnet_variables_are_not_deprecated():
    # COIN-M has no demo environment, so its testnet pair has no replacement to point at.
    environ = {
        "BINANCE_FUTURES_TESTNET_API_KEY": KEY,
        "BINANCE_FUTURES_TESTNET_API_SECRET": SECRET,
    }
    assert load(client(COINM, TESTNET), environ).notices == ()


# --- private_key_file ---------------------------------------------------------------------


PEM = "-----BEGIN PRIVATE KEY-----\nMC4CAQAw\n-----END PRIVATE KEY-----\n"


def test_private_key_file_supplies_the_secret():
    read = {"/keys/ed.pem": PEM}.__getitem__
    creds = load(client(private_key_file="/keys/ed.pem"), {"BINANCE_API_KEY": KEY}, read_file=read)
    assert creds.api_secret == PEM.strip()
    assert creds.source == "config, BINANCE_API_KEY"


def test_private_key_file_and_api_secret_together_are_ambiguous():
    with pytest.raises(CredentialsError, match="not both"):
        load(client(api_secret=SECRET, private_key_file="k.pem"), {}, read_file=lambda _: PEM)


def test_empty_private_key_file_is_an_error():
    with pytest.raises(CredentialsError, match="is empty"):
        load(client(api_key=KEY, private_key_file="k.pem"), {}, read_file=lambda _: "\n")


def test_private_key_file_is_read_from_disk(tmp_path):
    path = tmp_path / "key.pem"
    path.write_text(PEM, encoding="utf-8")
    creds = load(client(api_key=KEY, private_key_file=str(path)), {})
    assert creds.api_secret == PEM.strip()
    with pytest.raises(CredentialsError, match="could not be read"):
        load(client(api_key=KEY, private_key_file=str(tmp_path / "missing.pem")), {})


# --- no leaks -------------------------------------------------------------------------------


def test_repr_and_str_hide_the_secret_and_most_of_the_key():
    creds = Credentials(KEY, SECRET, "config")
    for text in (repr(creds), str(creds), f"{creds}"):
        assert SECRET not in text
        assert KEY not in text
        assert "KEY1" in text  # the last four characters identify the key
    assert "***" in repr(Credentials("short", SECRET, "config"))


@pytest.mark.parametrize("bad", ["abc\ndef", "abc def", "clé", "a\x00b"])
def test_a_key_that_cannot_go_into_a_header_is_refused_without_showing_it(bad: str) -> None:
    client = ClientConfig(
        name="spot", account_type=AccountType.SPOT, api_key=bad, api_secret="s" * 64
    )
    with pytest.raises(CredentialsError, match="api_key holds characters") as raised:
        load_credentials(client, environ={})
    assert bad not in str(raised.value)
    with pytest.raises(CredentialsError, match="BINANCE_API_KEY holds characters"):
        load_credentials(
            ClientConfig(name="spot", account_type=AccountType.SPOT),
            environ={"BINANCE_API_KEY": bad, "BINANCE_API_SECRET": "s" * 64},
        )
