"""Serve: the HTTP service (REST routes, health, metrics) and the guard that every way in passes (rate limits, the
queue bound, auth, error mapping, the request log)."""
