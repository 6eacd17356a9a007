"""The HTTP side: FastAPI routers and apps (the ``api`` extra). Never imported by the pure packages
or by ``worker.sender`` (a send service does not need a web framework)."""
