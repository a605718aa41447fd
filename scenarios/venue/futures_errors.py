"""Binance's futures error replies (USDⓈ-M ``/fapi`` and COIN-M ``/dapi``).

The shared catalogue (:mod:`scenarios.venue.errors`) holds the codes every product uses; the
rows here are the futures trading codes (``-20xx`` order and margin issues, ``-40xx`` filters
and account settings, ``-50xx`` order-flow rules), with the texts Binance sends (futures
error page, see ``binance-protocol.md`` sections 5.2, 5.3 and 6). Each row is an
:class:`~scenarios.venue.errors.ErrorKind`: calling it builds the
:class:`~scenarios.venue.errors.VenueError` (HTTP 400).

Where Binance documents no exact text the row says so in a comment and uses the code's
documented meaning.
"""

from __future__ import annotations

from typing import Final

from scenarios.venue.errors import ErrorKind

FUTURES: Final = "usdm"

# --- 20xx: order, margin and position issues ------------------------------------------------
margin_insufficient: Final = ErrorKind(-2019, "MARGIN_NOT_SUFFICIEN", ("Margin is insufficient.",))
would_immediately_trigger: Final = ErrorKind(
    -2021, "ORDER_WOULD_IMMEDIATELY_TRIGGER", ("Order would immediately trigger.",)
)
reduce_only_rejected: Final = ErrorKind(
    -2022, "REDUCE_ONLY_REJECT", ("ReduceOnly Order is rejected.",)
)
max_open_orders: Final = ErrorKind(
    -2025, "MAX_OPEN_ORDER_EXCEEDED", ("Reach max open order limit.",)
)
max_leverage_ratio: Final = ErrorKind(
    -2027,
    "MAX_LEVERAGE_RATIO",
    ("Exceeded the maximum allowable position at current leverage.",),
)

# --- 40xx: filters ----------------------------------------------------------------------
price_above_max: Final = ErrorKind(
    -4002, "PRICE_GREATER_THAN_MAX_PRICE", ("Price greater than max price.",)
)
quantity_not_positive: Final = ErrorKind(
    -4003, "QTY_LESS_THAN_ZERO", ("Quantity less than or equal to zero.",)
)
quantity_below_min: Final = ErrorKind(
    -4004, "QTY_LESS_THAN_MIN_QTY", ("Quantity less than min quantity.",)
)
quantity_above_max: Final = ErrorKind(
    -4005, "QTY_GREATER_THAN_MAX_QTY", ("Quantity greater than max quantity.",)
)
stop_price_not_positive: Final = ErrorKind(
    -4006, "STOP_PRICE_LESS_THAN_ZERO", ("Stop price less than zero.",)
)
stop_price_above_max: Final = ErrorKind(
    -4007, "STOP_PRICE_GREATER_THAN_MAX_PRICE", ("Stop price greater than max price.",)
)
price_below_min: Final = ErrorKind(
    -4013, "PRICE_LESS_THAN_MIN_PRICE", ("Price less than min price.",)
)
price_not_tick: Final = ErrorKind(
    -4014, "PRICE_NOT_INCREASED_BY_TICK_SIZE", ("Price not increased by tick size.",)
)
client_order_id_invalid: Final = ErrorKind(
    -4015,
    "INVALID_CL_ORD_ID_LEN",
    ("Client order id length should not be more than 36 chars",),
)
price_above_multiplier: Final = ErrorKind(
    -4016,
    "PRICE_HIGHTER_THAN_MULTIPLIER_UP",
    ("Price is higher than mark price multiplier cap.",),
)
quantity_not_step: Final = ErrorKind(
    -4023, "QTY_NOT_INCREASED_BY_STEP_SIZE", ("Qty not increased by step size.",)
)
price_below_multiplier: Final = ErrorKind(
    -4024,
    "PRICE_LOWER_THAN_MULTIPLIER_DOWN",
    ("Price is lower than mark price multiplier floor.",),
)
invalid_leverage: Final = ErrorKind(-4028, "INVALID_LEVERAGE", ("Leverage %s is not valid",))
invalid_working_type: Final = ErrorKind(-4031, "INVALID_WORKING_TYPE", ("Invalid workingType.",))
max_cancel_size: Final = ErrorKind(
    -4032, "EXCEED_MAX_CANCEL_ORDER_SIZE", ("Exceed maximum cancel order size.",)
)
max_stop_orders: Final = ErrorKind(
    -4045, "MAX_STOP_ORDER_EXCEEDED", ("Reach max stop order limit.",)
)
margin_type_unchanged: Final = ErrorKind(
    -4046, "NO_NEED_TO_CHANGE_MARGIN_TYPE", ("No need to change margin type.",)
)
margin_type_open_orders: Final = ErrorKind(
    -4047,
    "THERE_EXISTS_OPEN_ORDERS",
    ("Margin type cannot be changed if there exists open orders.",),
)
margin_type_position: Final = ErrorKind(
    -4048,
    "THERE_EXISTS_QUANTITY",
    ("Margin type cannot be changed if there exists position.",),
)
margin_not_isolated: Final = ErrorKind(
    -4049, "ADD_ISOLATED_MARGIN_REJECT", ("Add margin only support for isolated position.",)
)
cross_balance_insufficient: Final = ErrorKind(
    -4050, "CROSS_BALANCE_INSUFFICIENT", ("Cross balance insufficient.",)
)
isolated_balance_insufficient: Final = ErrorKind(
    -4051, "ISOLATED_BALANCE_INSUFFICIENT", ("Isolated balance insufficient.",)
)
no_position_for_margin: Final = ErrorKind(
    -4054, "ADD_ISOLATED_MARGIN_NO_POSITION_REJECT", ("Cannot add position margin: position is 0.",)
)
amount_not_positive: Final = ErrorKind(
    -4055, "AMOUNT_MUST_BE_POSITIVE", ("Amount must be positive.",)
)
position_side_unchanged: Final = ErrorKind(
    -4059, "NO_NEED_TO_CHANGE_POSITION_SIDE", ("No need to change position side.",)
)
invalid_position_side: Final = ErrorKind(
    -4060, "INVALID_POSITION_SIDE", ("Invalid position side.",)
)
position_side_mismatch: Final = ErrorKind(
    -4061,
    "POSITION_SIDE_NOT_MATCH",
    ("Order's position side does not match user's setting.",),
)
reduce_only_conflict: Final = ErrorKind(
    -4062, "REDUCE_ONLY_CONFLICT", ("Invalid or improper reduceOnly value.",)
)
dual_open_orders: Final = ErrorKind(
    -4067,
    "POSITION_SIDE_CHANGE_EXISTS_OPEN_ORDERS",
    ("Position side cannot be changed if there exists open orders.",),
)
dual_position: Final = ErrorKind(
    -4068,
    "POSITION_SIDE_CHANGE_EXISTS_QUANTITY",
    ("Position side cannot be changed if there exists position.",),
)
batch_size: Final = ErrorKind(
    -4082, "INVALID_BATCH_PLACE_ORDER_SIZE", ("Invalid number of batch place orders.",)
)
duplicate_client_order_id: Final = ErrorKind(
    -4116, "DUPLICATED_CLIENT_ORDER_ID", ("ClientOrderId is duplicated.",)
)
stop_order_switch_algo: Final = ErrorKind(
    -4120,
    "STOP_ORDER_SWITCH_ALGO",
    (
        "Order type not supported for this endpoint. "
        "Please use the Algo Order API endpoints instead.",
    ),
)
market_percent_price: Final = ErrorKind(
    -4131,
    "MARKET_ORDER_REJECT",
    ("The counterparty's best price does not meet the PERCENT_PRICE filter limit.",),
)
invalid_activation_price: Final = ErrorKind(
    -4135, "INVALID_ACTIVATION_PRICE", ("Invalid activation price.",)
)
close_position_quantity: Final = ErrorKind(
    -4137,
    "QUANTITY_EXISTS_WITH_CLOSE_POSITION",
    ("Quantity must be zero with closePosition equals true",),
)
close_position_reduce_only: Final = ErrorKind(
    -4138,
    "REDUCE_ONLY_MUST_BE_TRUE",
    ("Reduce only must be true with closePosition equals true",),
)
isolated_leverage_with_position: Final = ErrorKind(
    -4161,
    "ISOLATED_LEVERAGE_REJECT_WITH_POSITION",
    ("Leverage reduction is not supported in Isolated Margin Mode with open positions",),
)
min_notional: Final = ErrorKind(
    -4164,
    "MIN_NOTIONAL",
    ("Order's notional must be no smaller than %s (unless you choose reduce only)",),
)
# Binance documents the code for "the mode is already set" without a fixed text.
multi_assets_unchanged: Final = ErrorKind(
    -4171, "MULTI_ASSETS_MODE_NO_CHANGE", ("No need to change multi-assets mode.",)
)

# --- 50xx: order-flow rules -------------------------------------------------------------
fok_rejected: Final = ErrorKind(
    -5021,
    "FOK_ORDER_REJECT",
    ("Due to the order could not be filled immediately, the FOK order has been rejected.",),
)
gtx_rejected: Final = ErrorKind(
    -5022,
    "GTX_ORDER_REJECT",
    (
        "Due to the order could not be executed as maker, the Post Only order will be "
        "rejected. The order will not be recorded in the order history",
    ),
)
modify_limit_only: Final = ErrorKind(
    -5025, "MODIFICATION_TYPE_NOT_SUPPORTED", ("Only limit order is supported.",)
)
modify_count: Final = ErrorKind(
    -5026, "EXCEED_MAX_MODIFY_ORDER_LIMIT", ("Exceed maximum modify order limit.",)
)
modify_same: Final = ErrorKind(-5027, "SAME_ORDER", ("No need to modify the order.",))
invalid_price_match: Final = ErrorKind(-5037, "INVALID_PRICE_MATCH", ("Invalid price match.",))
price_match_type: Final = ErrorKind(
    -5038,
    "UNSUPPORTED_ORDER_TYPE_PRICE_MATCH",
    ("Price match only supports order type: LIMIT, STOP AND TAKE_PROFIT",),
)
invalid_stp_mode: Final = ErrorKind(
    -5039, "INVALID_SELF_TRADE_PREVENTION_MODE", ("Invalid self trade prevention mode.",)
)
good_till_date: Final = ErrorKind(
    -5040,
    "FUTURE_GOOD_TILL_DATE",
    (
        "The goodTillDate timestamp must be greater than the current time plus 600 seconds "
        "and smaller than 253402300799000",
    ),
)
bbo_rejected: Final = ErrorKind(-5041, "BBO_ORDER_REJECT", ("No depth matches this BBO order",))
