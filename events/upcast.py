"""Upcasting: stored event dicts written by an older class VERSION are rewritten, one version
step at a time, before they are structured into today's classes.

Register a step with :func:`upcaster`; the function receives the stored event dict (without
nothing removed: ``type`` is still in it) and returns the dict for ``from_version + 1``.
Tags are never renamed, so a step never changes ``type``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Upcaster = Callable[[dict[str, Any]], dict[str, Any]]

_STEPS: dict[tuple[str, int], Upcaster] = {}


class UpcastError(ValueError):
    """A stored record cannot be brought to the current version of its event class."""


def upcaster(tag: str, from_version: int) -> Callable[[Upcaster], Upcaster]:
    """Decorator registering the step that rewrites ``tag`` from ``from_version``."""

    def register(step: Upcaster) -> Upcaster:
        key = (tag, from_version)
        if key in _STEPS:
            raise AssertionError(f"two upcasters registered for {tag!r} v{from_version}")
        _STEPS[key] = step
        return step

    return register


def upcast(tag: str, version: int, current: int, event: dict[str, Any]) -> dict[str, Any]:
    """Apply the registered steps to go from ``version`` to ``current``.

    Raises:
        UpcastError: the stored version is newer than the code, or a step is missing.
    """
    if version > current:
        raise UpcastError(
            f"stored {tag!r} is version {version} but this tern knows only up to "
            f"version {current}; upgrade tern to read this journal"
        )
    while version < current:
        step = _STEPS.get((tag, version))
        if step is None:
            raise UpcastError(f"no upcaster for {tag!r} from version {version} to {version + 1}")
        event = step(event)
        version += 1
    return event
