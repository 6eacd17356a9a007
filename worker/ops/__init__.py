"""Operator endpoints: Prometheus metrics and the ``/metrics`` / ``/healthz`` HTTP server."""
