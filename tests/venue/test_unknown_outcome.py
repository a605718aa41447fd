"""The "unknown outcome" cases: an order request that times out after the order was placed,
and one that fails before it was, over signed REST on a real venue."""

from __future__ import annotations

from scenarios.venue.instruments import Product
from scenarios.venue.market import BookSide
from tests.venue.test_spot_e2e import _send, rest, venue  # noqa: F401  (fixtures)

TIMEOUT = {
    "path": "/api/v3/order",
    "http_status": 408,
    "code": -1007,
    "msg": "Timeout waiting for response from backend server. Send status unknown; "
    "execution status unknown.",
    "count": 1,
}


async def open_client_ids(venue, rest) -> set[str]:  # noqa: F811
    answer = await _send(rest, venue, "GET", "/api/v3/openOrders", symbol="BTCUSDT")
    return {order["clientOrderId"] for order in answer.json()}


async def test_a_timed_out_order_may_or_may_not_have_been_placed(venue, rest) -> None:  # noqa: F811
    price = str(venue.markets[(Product.SPOT, "BTCUSDT")].best(BookSide.BID) - 100)
    order = {
        "symbol": "BTCUSDT",
        "side": "BUY",
        "type": "LIMIT",
        "timeInForce": "GTC",
        "quantity": "0.01",
        "price": price,
    }
    await rest.post("/_venue/faults/endpoint", json={**TIMEOUT, "executed": True})
    placed = await _send(rest, venue, "POST", "/api/v3/order", newClientOrderId="placed", **order)
    assert placed.status_code == 408
    assert placed.json()["code"] == -1007
    await rest.post("/_venue/faults/endpoint", json=TIMEOUT)
    lost = await _send(rest, venue, "POST", "/api/v3/order", newClientOrderId="lost", **order)
    assert lost.status_code == 408
    assert await open_client_ids(venue, rest) == {"placed"}
    # The venue's truth agrees: one order, the one whose request "timed out" after the work.
    truth = (await rest.post("/_venue/spot/orders", json={})).json()
    assert [entry["clientOrderId"] for entry in truth] == ["placed"]
