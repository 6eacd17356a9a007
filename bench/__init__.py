"""Benchmarks for optout-worker; run by hand (``make bench``), never by ``make test``.

They measure and report; they never assert timings, because a number that fails on a busy CI
runner says nothing about the code.
"""
