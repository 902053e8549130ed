"""Drift monitoring of the enriched stream: windows per model, a reference, alerts, outputs.

stats.py       pure statistics: Wilson interval, JS distance, PSI, cosine, MMD permutation test
reference.py   what normal looked like: built from a stream's first records, a file or a topic
window.py      tumbling windows per model (name, version); duplicates and dead letters
alerts.py      a figure beyond its threshold for K consecutive windows; the thresholds
config.py      ``MonitorConfig``: the monitor's settings (the worker's monitoring section)
prometheus.py  the figures as Prometheus metrics (``METRIC_NAMES``), in their own registry
monitor.py     ``Monitor``: observes a worker's outputs, closes windows into window records
dashboard.py   the live page served at ``/dashboard``

Nothing is imported here, so that importing one module does not pull in the others.
"""
