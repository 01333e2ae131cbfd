"""Prometheus metrics: what the desk counts (metrics.py), where it hears it (receivers.py), and `/metrics`
(views.py). docs/operations.md ("Metrics") lists every metric and the alert rules to start with."""
