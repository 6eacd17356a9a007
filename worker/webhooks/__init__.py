"""Signed webhooks: the dispatcher sends every blocklist change to the HTTPS endpoints an account
configured (``optout webhook add``), and receivers check the signature with
:func:`worker.webhooks.signature.verify`.

The package itself imports nothing: ``worker.webhooks.signature`` is pure (standard library only),
so a receiver can verify signatures without the dispatcher's HTTP client or Postgres driver.
"""
