"""The fault suite (issue 12): the real pipeline under faults, checked against a reference computed
from the input alone. ``python -m tests.chaos`` is ``make chaos``; a short run is in ``make test``
(``tests/integration/test_chaos.py``)."""
