"""Payload shapes recorded from Binance that more than one test module needs."""

from __future__ import annotations

from typing import Any

#: A COIN-M quarterly symbol as recorded from ``dapi/v1/exchangeInfo`` (there is no COIN-M
#: fixture), with the fields Binance added since (liquidation fields, underlying type,
#: ``maxMoveOrderLimit``).
COINM_QUARTERLY: dict[str, Any] = {
    "symbol": "BTCUSD_200925",
    "pair": "BTCUSD",
    "contractType": "CURRENT_QUARTER",
    "deliveryDate": 1601020800000,
    "onboardDate": 1591689600000,
    "contractStatus": "TRADING",
    "contractSize": 100,
    "marginAsset": "BTC",
    "maintMarginPercent": "2.5000",
    "requiredMarginPercent": "5.0000",
    "baseAsset": "BTC",
    "quoteAsset": "USD",
    "pricePrecision": 1,
    "quantityPrecision": 0,
    "baseAssetPrecision": 8,
    "quotePrecision": 8,
    "equalQtyPrecision": 4,
    "maxMoveOrderLimit": 10000,
    "triggerProtect": "0.0500",
    "underlyingType": "COIN",
    "underlyingSubType": [],
    "liquidationFee": "0.010000",
    "marketTakeBound": "0.05",
    "orderTypes": ["LIMIT", "MARKET"],
    "timeInForce": ["GTC", "IOC", "FOK", "GTX"],
    "filters": [
        {"filterType": "PRICE_FILTER", "maxPrice": "100000", "minPrice": "0.1", "tickSize": "0.1"},
        {"filterType": "LOT_SIZE", "maxQty": "100000", "minQty": "1", "stepSize": "1"},
        {"filterType": "MARKET_LOT_SIZE", "maxQty": "124191", "minQty": "1", "stepSize": "1"},
        {"filterType": "MAX_NUM_ORDERS", "limit": 200},
        {"filterType": "MAX_NUM_ALGO_ORDERS", "limit": 0},
        {
            "filterType": "PERCENT_PRICE",
            "multiplierDecimal": "4",
            "multiplierDown": "0.9500",
            "multiplierUp": "1.0500",
        },
    ],
}
