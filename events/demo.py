"""Events of the synthetic market that drives ``tern demo`` without keys or network."""

from __future__ import annotations

from decimal import Decimal
from typing import ClassVar

import attrs

from events.base import Event


@attrs.frozen(kw_only=True)
class SyntheticPrice(Event):
    """One step of the demo's seeded random-walk market for ``symbol``."""

    TAG: ClassVar[str] = "demo.price"
    symbol: str
    price: Decimal
    step: int
