"""Every recorded Spot ``executionReport`` has a venue counterpart of the same kind.

The venue runs a session that produces each execution type a Binance account sees (NEW,
TRADE partial and full, CANCELED, EXPIRED, REJECTED via cancel-replace, TRADE_PREVENTION, a
stop order's NEW) and each fixture is matched against a report of the same ``x`` (and, where
the fixture has one, the same ``X`` and order kind): every fixture key present with the same
JSON type, nothing extra beyond the fields Binance documents as conditional.

Fixtures describing what Binance does not send on Spot are named with the reason, so a new
fixture cannot be skipped silently.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import trio

from scenarios.venue import spot_api
from scenarios.venue.market import BookSide
from tests.venue.test_spot_shapes import FIXTURES, REPORT_CONDITIONAL, load, same_shape
from tests.venue.test_spot_support import KEYS, D, Desk

SPOT_REPORTS = sorted(
    [
        *(FIXTURES / "python_tests/ws_messages").glob("ws_spot_execution_report_*.json"),
        *(FIXTURES / "rust_test_data/spot/user_data_json").glob("execution_report_*.json"),
    ]
)
#: Fixtures with states Binance's Spot engine does not produce.
NOT_ON_SPOT = {
    # x=CALCULATED is a futures liquidation execution; Spot has no liquidations.
    "ws_spot_execution_report_calculated.json": "CALCULATED",
    # PENDING_CANCEL is documented as unused (binance-protocol.md 5.1.2).
    "ws_spot_execution_report_pending_cancel.json": "PENDING_CANCEL",
}


def session() -> list[dict[str, Any]]:
    """A Spot session that produces every execution type, and its reports."""
    desk = Desk()
    ask = desk.clear(BookSide.ASK, 3)
    bid = desk.best(BookSide.BID)
    # NEW, then TRADE (partial), then TRADE (full) against another account.
    resting = desk.order(
        side="SELL", type="LIMIT", timeInForce="GTC", quantity="0.02", price=str(ask - D("0.01"))
    )
    for _ in range(2):
        desk.order(
            KEYS[1],
            side="BUY",
            type="LIMIT",
            timeInForce="IOC",
            quantity="0.01",
            price=str(ask - D("0.01")),
        )
    # NEW then CANCELED.
    cancel_me = desk.order(
        side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.01", price=str(bid - 100)
    )
    desk.do(spot_api.cancel_order, symbol="BTCUSDT", orderId=cancel_me["orderId"])
    # EXPIRED: an IOC that cannot fill.
    desk.order(side="BUY", type="LIMIT", timeInForce="IOC", quantity="0.01", price=str(bid - 100))
    # A market order's TRADE(s), a stop order's NEW.
    desk.order(side="BUY", type="MARKET", quantity="0.001")
    desk.order(
        side="SELL",
        type="STOP_LOSS_LIMIT",
        timeInForce="GTC",
        quantity="0.01",
        price=str(bid - 50),
        stopPrice=str(bid - 40),
    )
    desk.order(
        side="BUY",
        type="TAKE_PROFIT_LIMIT",
        timeInForce="GTC",
        quantity="0.01",
        price=str(bid - 50),
        stopPrice=str(bid - 40),
    )
    # REJECTED: the new leg of a cancel-replace that cannot be placed (ALLOW_FAILURE).
    keep = desk.order(
        side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.01", price=str(bid - 100)
    )
    desk.fails(
        spot_api.cancel_replace,
        symbol="BTCUSDT",
        side="BUY",
        type="LIMIT_MAKER",
        quantity="0.01",
        price=str(ask + 100),
        cancelReplaceMode="ALLOW_FAILURE",
        cancelOrderId=keep["orderId"],
    )
    # TRADE_PREVENTION / EXPIRED_IN_MATCH: taking our own resting order.
    own = desk.order(
        side="SELL", type="LIMIT", timeInForce="GTC", quantity="0.01", price=str(ask - D("0.01"))
    )
    desk.order(
        side="BUY",
        type="LIMIT",
        timeInForce="GTC",
        quantity="0.01",
        price=str(ask - D("0.01")),
        selfTradePreventionMode="EXPIRE_TAKER",
    )
    assert resting["orderId"]
    assert own["orderId"]
    return desk.reports() + desk.reports(KEYS[1])


@pytest.fixture(scope="module")
def reports() -> list[dict[str, Any]]:
    async def run() -> list[dict[str, Any]]:
        return session()  # a venue is built inside trio

    return trio.run(run)


def kind(report: dict[str, Any]) -> str:
    return "stop" if report["o"] in ("STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT") else "plain"


def test_every_fixture_is_either_covered_or_explained() -> None:
    assert len(SPOT_REPORTS) >= 20
    assert set(NOT_ON_SPOT) <= {path.name for path in SPOT_REPORTS}


@pytest.mark.parametrize("path", SPOT_REPORTS, ids=lambda path: path.name)
def test_a_venue_report_of_the_same_kind_has_the_fixtures_shape(
    path: Path, reports: list[dict[str, Any]]
) -> None:
    theirs = load(path)
    if path.name in NOT_ON_SPOT:
        assert NOT_ON_SPOT[path.name] in (theirs["x"], theirs["X"])
        assert not [r for r in reports if (r["x"], r["X"]) == (theirs["x"], theirs["X"])]
        return
    candidates = [r for r in reports if r["x"] == theirs["x"]]
    assert candidates, f"the venue produced no x={theirs['x']} report"
    exact = [r for r in candidates if r["X"] == theirs["X"] and kind(r) == kind(theirs)]
    ours = (exact or candidates)[-1]
    if ours["X"] == "REJECTED":
        # "W" is "only visible if the order has been placed on the book" (Binance's
        # executionReport docs); a rejected order never was. The fixture's W=0 predates that.
        theirs = {key: value for key, value in theirs.items() if key != "W"}
    same_shape(ours, theirs, exact=False)
    extra = set(ours) - set(theirs)
    assert extra <= REPORT_CONDITIONAL, sorted(extra - REPORT_CONDITIONAL)
