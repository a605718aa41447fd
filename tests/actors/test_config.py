"""Config checking: every problem names the key, the value and what was expected."""

from __future__ import annotations

import pytest

from actors.config import ConfigError, config_from_dict, config_to_dict


@pytest.mark.parametrize(
    ("data", "key", "expected"),
    [
        ({"journal": {"fsync": "sometimes"}}, "journal.fsync", "one of per_batch"),
        ({"journal": {"dir": ""}}, "journal.dir", "non-empty"),
        ({"journal": {"max_segment_mb": 0}}, "journal.max_segment_mb", "positive integer"),
        ({"journal": {"max_segment_mb": True}}, "journal.max_segment_mb", "positive integer"),
        ({"supervisor": {"grace_s": float("nan")}}, "supervisor.grace_s", "finite"),
        ({"supervisor": {"grace_s": float("inf")}}, "supervisor.grace_s", "finite"),
        ({"supervisor": {"window_s": float("nan")}}, "supervisor.window_s", "finite"),
        (
            {"supervisor": {"backoff_initial_ms": 500, "backoff_max_ms": 100}},
            "supervisor.backoff_max_ms",
            "at least backoff_initial_ms (500)",
        ),
        ({"session": {"seed": "one"}}, "session.seed", "an integer"),
        ({"synthetic": {"symbols": []}}, "synthetic.symbols", "non-empty list"),
        ({"synthetic": {"tick_size": 0.01}}, "synthetic.tick_size", "written as a string"),
        ({"synthetic": {"tick_size": "-1"}}, "synthetic.tick_size", "positive decimal"),
        ({"strategies": [{}]}, "strategies[0].class", "module:Class"),
        ({"strategies": [{"class": "actors.strategy"}]}, "strategies[0].class", "module:Class"),
        (
            {"strategies": [{"class": "actors.strategy:Nope"}]},
            "strategies[0].class",
            "importable Strategy subclass",
        ),
        (
            {"strategies": [{"class": "actors.strategies.example:MeanReversion", "name": "x y"}]},
            "strategies[0].name",
            "lowercase name",
        ),
        (
            {
                "strategies": [
                    {"class": "actors.strategies.example:MeanReversion", "name": "timers"}
                ]
            },
            "strategies[0].name",
            "no other actor uses",
        ),
        (
            {
                "strategies": [
                    {
                        "class": "actors.strategies.example:MeanReversion",
                        "params": {"venue": {"api_secret": "hunter2"}},
                    }
                ]
            },
            "strategies[0].params.venue.api_secret",
            "no secret",
        ),
        ({"clients": [{"account_type": "margin"}]}, "clients[0].account_type", "usdt_futures"),
        (
            {"clients": [{"account_type": "spot", "environment": "live"}]},
            "clients[0].environment",
            "LIVE, DEMO, TESTNET",
        ),
        (
            {"clients": [{"account_type": "usdt_futures", "us": True}]},
            "clients[0].us",
            "Binance US has Spot only",
        ),
        (
            {"clients": [{"account_type": "usdt_futures", "futures_leverages": {"BTCUSDT": 200}}]},
            "clients[0].futures_leverages.BTCUSDT",
            "1..125",
        ),
        (
            {"clients": [{"account_type": "spot", "default_taker_fee": 0.0004}]},
            "clients[0].default_taker_fee",
            "written as a string",
        ),
        (
            {"clients": [{"account_type": "spot", "name": "desk/user"}]},
            "clients[0].name",
            "a lowercase name",
        ),
        (
            {"clients": [{"account_type": "spot", "name": "a~x"}]},
            "clients[0].name",
            "a lowercase name",
        ),
        (
            {"clients": [{"account_type": "spot", "max_retries": -1}]},
            "clients[0].max_retries",
            "a non-negative integer",
        ),
        (
            {"clients": [{"account_type": "spot", "stream_liveness_secs": -1}]},
            "clients[0].stream_liveness_secs",
            "a non-negative integer of seconds (0 turns the stream silence deadline off)",
        ),
        (
            {"clients": [{"account_type": "spot", "stream_liveness_secs": "60"}]},
            "clients[0].stream_liveness_secs",
            "a non-negative integer of seconds",
        ),
        (
            {"clients": [{"account_type": "spot", "stream_liveness_secs": 1.5}]},
            "clients[0].stream_liveness_secs",
            "a non-negative integer of seconds",
        ),
        (
            {"clients": [{"account_type": "spot", "stream_liveness_secs": True}]},
            "clients[0].stream_liveness_secs",
            "a non-negative integer of seconds",
        ),
        (
            {"clients": [{"account_type": "spot", "recv_window": 5000}]},
            "clients[0].recv_window",
            "known key",
        ),
        (
            {"jounral": {}},
            "jounral",
            "a known key (clients, journal, session, strategies, supervisor, synthetic)",
        ),
    ],
)
def test_bad_values_are_named(data: dict, key: str, expected: str) -> None:
    with pytest.raises(ConfigError) as raised:
        config_from_dict(data)
    assert raised.value.key == key
    assert expected in str(raised.value)
    assert "hunter2" not in str(raised.value)


def test_the_recorded_config_rebuilds_the_same_config() -> None:
    config = config_from_dict(
        {
            "session": {"seed": 9},
            "synthetic": {"symbols": ["BTCUSDT"]},
            "strategies": [
                {
                    "class": "actors.strategies.example:MeanReversion",
                    "params": {"quote_token": "USDT", "window": 3},
                }
            ],
        }
    )
    assert config_from_dict(config_to_dict(config)) == config


def test_client_secrets_never_reach_the_recorded_config() -> None:
    config = config_from_dict(
        {
            "clients": [
                {
                    "name": "usdm",
                    "account_type": "usdt_futures",
                    "environment": "TESTNET",
                    "base_url_http": "http://127.0.0.1:8080",
                    "api_key": "key-123",
                    "api_secret": "secret-456",
                    "futures_leverages": {"BTCUSDT": 20},
                }
            ]
        }
    )
    (client,) = config.clients
    assert client.api_secret == "secret-456"
    assert "secret-456" not in repr(client)
    recorded = config_to_dict(config)
    assert "key-123" not in str(recorded)
    assert "secret-456" not in str(recorded)
    rebuilt = config_from_dict(recorded)
    assert rebuilt.clients[0].futures_leverages == {"BTCUSDT": 20}
    assert rebuilt.clients[0].api_key is None


def test_a_client_can_turn_raw_frames_off_and_a_bad_value_is_named() -> None:
    client = {"name": "spot", "account_type": "spot"}
    config = config_from_dict({"clients": [{**client, "journal_raw_frames": False}]})
    assert config.clients[0].journal_raw_frames is False
    assert config_from_dict({"clients": [client]}).clients[0].journal_raw_frames is True
    with pytest.raises(ConfigError, match="journal_raw_frames"):
        config_from_dict({"clients": [{**client, "journal_raw_frames": "no"}]})


@pytest.mark.parametrize("seconds", [0, 1, 60, 86_400])
def test_a_client_sets_its_stream_liveness_and_it_is_recorded(seconds: int) -> None:
    client = {"name": "usdm", "account_type": "usdt_futures"}
    config = config_from_dict({"clients": [{**client, "stream_liveness_secs": seconds}]})
    assert config.clients[0].stream_liveness_secs == seconds
    recorded = config_to_dict(config)
    assert recorded["clients"][0]["stream_liveness_secs"] == seconds  # 0 is kept, not dropped
    assert config_from_dict(recorded) == config


def test_stream_liveness_defaults_to_a_minute() -> None:
    config = config_from_dict({"clients": [{"account_type": "spot"}]})
    assert config.clients[0].stream_liveness_secs == 60
    assert config_to_dict(config)["clients"][0]["stream_liveness_secs"] == 60
