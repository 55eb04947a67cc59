"""The brain's REST and WebSocket API."""
