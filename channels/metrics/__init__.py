"""Prometheus metrics: counters kept in Redis by every process (counters.py), rendered with
the database's gauges at scrape time (collector.py) by `/metrics` (view.py)."""
