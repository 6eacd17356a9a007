"""``python -m bench.peers``: see :mod:`bench.peers.compare`."""

import sys

from bench.peers.compare import main

sys.exit(main())
