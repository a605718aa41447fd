"""Binance plumbing for tern's edge actors: venues and URLs, signing, the endpoint table,
rate limits, REST and WebSocket clients. Nothing here is an actor; nothing here is shared
with the local venue in ``scenarios/venue/``."""
