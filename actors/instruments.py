"""The instruments actor: every client's instruments, their status and their fees.

A deterministic actor (:class:`~actors.base.FoldActor`): it asks connectivity for
``exchangeInfo`` with ``rest.request`` events and folds the ``rest.response`` answers, so
replay re-derives every instrument event from the recorded answers.

* **Load.** At session start, for every ``[[clients]]`` entry: ``exchangeInfo`` of its product,
  parsed by :func:`actors.binance.instruments.parse_exchange_info` into ``Instrument`` events
  (and ``instrument.skipped`` for a symbol that cannot be parsed, with the reason; its warning
  is silenced by the client's ``log_warnings = false``). A failed load is retried on the next
  reload timer, or after :data:`RETRY_MS` when none is configured.
* **Reload** every ``update_instruments_interval_mins`` (0 = never): an instrument is
  published again only when its definition changed.
* **Status** every ``instrument_status_poll_secs`` (0 = off): the first answer seeds the
  tracker silently; later answers publish ``instrument.status`` for each change, and a symbol
  gone from ``exchangeInfo`` becomes ``NOT_AVAILABLE_FOR_TRADING``. Every answer (load,
  reload or poll) feeds the same tracker. Instruments that are not trading at load time are
  tracked too (unlike the peer's, which never sees them come back).
* **Fees.** From the product's fee-tier table, the client's ``default_taker_fee``, and, with
  ``query_commission_rates = true`` on a futures client, Binance's per-symbol
  ``commissionRate`` (weight 20 each, sent at the limiter's BACKGROUND priority so they never
  delay trading or data): each answer republishes that instrument with its fees; a failure
  keeps the table's.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import attrs

from actors.base import FoldActor
from actors.binance.instruments import (
    PRODUCT_OF,
    CommissionRateError,
    ExchangeInfoError,
    FeeTable,
    StatusTracker,
    parse_commission_rate,
    parse_exchange_info,
)
from actors.config import AccountType, ClientConfig
from events.base import Envelope, Event
from events.connectivity import RestRequest, RestResponse
from events.market import Instrument, InstrumentsUnavailable
from events.system import ScheduleTimer, SessionStarted, TimerFired

__all__ = ["NAME", "RETRY_MS", "InstrumentsActor"]

#: The actor's name.
NAME = "instruments"
#: How soon a failed first load is tried again when no reload interval is configured.
RETRY_MS = 30_000

_EXCHANGE_INFO = {
    AccountType.SPOT: "/api/v3/exchangeInfo",
    AccountType.USDT_FUTURES: "/fapi/v1/exchangeInfo",
    AccountType.COIN_FUTURES: "/dapi/v1/exchangeInfo",
}
_COMMISSION_RATE = {
    AccountType.USDT_FUTURES: "/fapi/v1/commissionRate",
    AccountType.COIN_FUTURES: "/dapi/v1/commissionRate",
}
_PREFIX = "instruments:"


class _ClientState:
    """One client's instruments as this actor last published them."""

    def __init__(self, config: ClientConfig) -> None:
        self.config = config
        self.product = PRODUCT_OF[config.account_type]
        self.fees = FeeTable.for_product(self.product, default_taker_fee=config.default_taker_fee)
        self.tracker = StatusTracker()
        self.published: dict[str, Instrument] = {}
        self.skipped: dict[str, str] = {}
        self.loaded = False
        self.asked_rates = False


class InstrumentsActor(FoldActor):
    """See the module docstring. ``clients`` are the session's ``[[clients]]``."""

    SUBSCRIPTIONS: ClassVar[tuple[str, ...]] = (
        SessionStarted.TAG,
        TimerFired.TAG,
        RestResponse.TAG,
    )

    def __init__(
        self,
        name: str = NAME,
        *,
        seed: int | str = 0,
        clients: Sequence[ClientConfig] = (),
        params: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(name, seed=seed, params=params)
        self.clients = {config.name: _ClientState(config) for config in clients}
        self._calls = 0

    def handle(self, envelope: Envelope) -> Sequence[Event]:
        event = envelope.event
        if isinstance(event, SessionStarted):
            return self._start()
        if isinstance(event, TimerFired):
            if event.owner != self.name:
                return ()
            kind, _, client = event.name.partition(":")
            state = self.clients.get(client)
            if state is None or kind not in ("reload", "status", "retry"):
                return ()
            return [self._ask_exchange_info(state)]
        if isinstance(event, RestResponse) and event.call_id.startswith(_PREFIX):
            state = self.clients.get(event.client)
            if state is None:
                return ()
            if event.call_id.startswith(f"{_PREFIX}rate:"):
                return self._on_rate(state, event)
            return self._on_exchange_info(state, event)
        return ()

    # ------------------------------------------------------------------------------ asking

    def _start(self) -> list[Event]:
        out: list[Event] = []
        for state in self.clients.values():
            config = state.config
            out.append(self._ask_exchange_info(state))
            reload_ms = config.update_instruments_interval_mins * 60_000
            if reload_ms:
                out.append(self._timer(f"reload:{config.name}", reload_ms))
            poll_ms = config.instrument_status_poll_secs * 1000
            if poll_ms and poll_ms != reload_ms:
                out.append(self._timer(f"status:{config.name}", poll_ms))
        return out

    def _timer(self, name: str, every_ms: int) -> ScheduleTimer:
        return ScheduleTimer(owner=self.name, name=name, delay_ms=every_ms, interval_ms=every_ms)

    def _ask_exchange_info(self, state: _ClientState) -> RestRequest:
        self._calls += 1
        return RestRequest(
            client=state.config.name,
            call_id=f"{_PREFIX}info:{self._calls}",
            method="GET",
            path=_EXCHANGE_INFO[state.config.account_type],
        )

    # ---------------------------------------------------------------------------- answers

    def _on_exchange_info(self, state: _ClientState, response: RestResponse) -> list[Event]:
        config = state.config
        if response.outcome != "ok":
            return self._load_failed(state, response.message or f"HTTP {response.status}")
        try:
            parsed = parse_exchange_info(
                response.body,
                client=config.name,
                product=state.product,
                fees=state.fees,
                log_warnings=config.log_warnings,
            )
        except ExchangeInfoError as exc:
            return self._load_failed(state, str(exc))
        out: list[Event] = []
        for skip in parsed.skipped:
            if state.skipped.get(skip.symbol) != skip.reason:
                state.skipped[skip.symbol] = skip.reason
                out.append(skip)
        for instrument in parsed.instruments:
            state.skipped.pop(instrument.symbol, None)
            if state.published.get(instrument.symbol) != instrument:
                state.published[instrument.symbol] = instrument
                out.append(instrument)
        out.extend(state.tracker.update(parsed))
        first = not state.loaded
        state.loaded = True
        if first and config.query_commission_rates and not state.asked_rates:
            state.asked_rates = True
            out.extend(self._ask_rates(state, parsed.instruments))
        return out

    def _load_failed(self, state: _ClientState, why: str) -> list[Event]:
        out: list[Event] = [InstrumentsUnavailable(client=state.config.name, reason=why)]
        if not state.loaded and not state.config.update_instruments_interval_mins:
            out.append(
                ScheduleTimer(owner=self.name, name=f"retry:{state.config.name}", delay_ms=RETRY_MS)
            )
        return out

    def _ask_rates(self, state: _ClientState, instruments: Sequence[Instrument]) -> list[Event]:
        path = _COMMISSION_RATE.get(state.config.account_type)
        if path is None:  # Spot: one account-wide answer; the table's VIP 0 stands
            return []
        return [
            RestRequest(
                client=state.config.name,
                call_id=f"{_PREFIX}rate:{instrument.symbol}",
                method="GET",
                path=path,
                params={"symbol": instrument.symbol},
            )
            for instrument in instruments
        ]

    def _on_rate(self, state: _ClientState, response: RestResponse) -> list[Event]:
        symbol = response.call_id.removeprefix(f"{_PREFIX}rate:")
        if response.outcome != "ok":
            return []  # the table's fees stand
        try:
            rate = parse_commission_rate(response.body, symbol=symbol)
        except CommissionRateError:
            return []
        state.fees = state.fees.with_commission_rates([rate])
        instrument = state.published.get(symbol)
        if instrument is None:
            return []
        fees = state.fees.fees(symbol)
        updated = attrs.evolve(
            instrument, maker_fee=fees.maker, taker_fee=fees.taker, fee_source=fees.source
        )
        if updated == instrument:
            return []
        state.published[symbol] = updated
        return [updated]
