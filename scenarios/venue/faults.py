"""Faults a scenario can inject through the control API (``/_venue/faults``).

Each fault is explicit state the request and stream paths consult; nothing is random. See
``docs/venue.md`` for an example of each.
"""

from __future__ import annotations

import attrs


@attrs.define
class EndpointFault:
    """What to do to requests for one path.

    Attributes:
        delay_s: answer only after this long (a stall when very large).
        http_status / code / msg: answer with this error instead of the real response; a
            ``code`` of None sends a bare HTTP error (e.g. a 503 from a load balancer).
        remaining: how many requests the fault applies to; None means until cleared.
        executed: the request is carried out (an order *is* placed) before the delay and
            the error answer: Binance's "unknown outcome" (e.g. ``-1007`` timeout, ``-1006``,
            HTTP 5xx) when the work was done. Without it the error comes instead of the work.
    """

    delay_s: float = 0.0
    http_status: int | None = None
    code: int | None = None
    msg: str | None = None
    remaining: int | None = None
    executed: bool = False

    def take(self) -> bool:
        """Consume one use; False once the fault is used up."""
        if self.remaining is None:
            return True
        if self.remaining <= 0:
            return False
        self.remaining -= 1
        return True


@attrs.define
class DepthFault:
    """Sequencing faults for one diff-depth stream family (every speed of one symbol).

    ``skip``: drop the next N events (a gap in update ids); ``repeat``: send the next N events
    twice; ``reorder``: hold the next event back and send it after the one that follows.
    """

    skip: int = 0
    repeat: int = 0
    reorder: int = 0


@attrs.define
class Faults:
    endpoints: dict[str, EndpointFault] = attrs.field(factory=dict)
    depth: dict[tuple[str, str], DepthFault] = attrs.field(factory=dict)
    refuse_streams: bool = False

    def endpoint(self, path: str, *, executed: bool = False) -> EndpointFault | None:
        """Take one use of the fault on ``path`` of the given kind (before the work, or
        ``executed``: after it), or None when there is none of that kind."""
        fault = self.endpoints.get(path)
        if fault is None or fault.executed is not executed:
            return None
        if not fault.take():
            del self.endpoints[path]
            return None
        return fault

    def depth_fault(self, product: str, symbol: str) -> DepthFault | None:
        return self.depth.get((product, symbol.upper()))

    def clear(self) -> None:
        self.endpoints.clear()
        self.depth.clear()
        self.refuse_streams = False
