"""The HTTP API (``optout api``): FastAPI routes over the Store and the change topic."""
