"""Issue 16's peers: the same job written for Quix Streams and faust-streaming, and the benchmark
that runs them beside the classifier and the plain-aiokafka ceiling (``python -m bench.peers``).

The peers' frameworks are optional (``pip install -e '.[bench]'``); nothing here is imported by
the worker or the tests.
"""
