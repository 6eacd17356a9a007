"""Optout-worker: STOP/START/HELP engine."""
