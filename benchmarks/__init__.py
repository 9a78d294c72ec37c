"""Benchmarks of syncsvc: `make bench` runs `benchmarks/run.py`."""
