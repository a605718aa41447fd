"""Scripted situations and the local Binance-compatible venue (scenarios/venue/)."""
