"""The venue's TOML config: what it accepts, what it refuses, and that it takes effect."""

from __future__ import annotations

from decimal import Decimal

import pytest

from scenarios.venue.config import VenueConfig, venue_config_from_dict
from scenarios.venue.server import Venue


async def test_limit_overrides_reach_the_limiter_and_exchange_info() -> None:
    config = venue_config_from_dict(
        {"limits": {"spot_orders_10s": 5000, "futures_weight_1m": 9000}, "seed": 3}
    )
    venue = Venue(config)
    spot, futures = (
        {(rule.kind, rule.interval, rule.interval_num): rule.limit for rule in limits}
        for limits in (venue.limiter.limits("spot"), venue.limiter.limits("futures"))
    )
    assert spot[("ORDERS", "SECOND", 10)] == 5000
    assert spot[("ORDERS", "DAY", 1)] == 160_000  # untouched
    assert spot[("REQUEST_WEIGHT", "MINUTE", 1)] == 6000
    assert futures[("REQUEST_WEIGHT", "MINUTE", 1)] == 9000


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"limits": {"spot_orders_1h": 5}}, "limits.spot_orders_1h"),
        ({"limits": {"spot_orders_10s": 0}}, "a positive integer"),
        ({"limits": {"spot_orders_10s": "5"}}, "a positive integer"),
        ({"balances": {"spot": {"USDT": 5}}}, "balances.spot.USDT"),
        ({"balances": {"margin": {}}}, "balances.margin"),
        ({"tick_ms": 0}, "tick_ms"),
        ({"colour": "blue"}, "colour"),
    ],
)
def test_bad_config_is_refused_with_the_key_named(data: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        venue_config_from_dict(data)


def test_balances_replace_a_product_default() -> None:
    config = venue_config_from_dict({"balances": {"spot": {"USDT": "12.5", "BTC": "1"}}})
    assert config.balances["spot"] == {"USDT": Decimal("12.5"), "BTC": Decimal(1)}
    assert config.balances["usdm"] == VenueConfig().balances["usdm"]
