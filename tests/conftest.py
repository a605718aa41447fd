"""Shared fixtures. Every async test runs under trio (``trio_mode``)."""

from __future__ import annotations

import pytest

from events.journal import MemoryJournalStore


@pytest.fixture
def memory_store() -> MemoryJournalStore:
    return MemoryJournalStore()
