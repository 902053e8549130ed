"""A/B and one-question experiments still worth rerunning: ``python -m bench.experiments.NAME``
from the repository root (each module's docstring says what it measures and how to run it).
Their results are in ``bench/results/`` (see its README.md)."""
