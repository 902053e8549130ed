"""stream_trf's benchmarks, kept outside the installed package.

``bench.harness`` is what ``stream-trf bench`` runs; ``bench.drift`` measures the drift monitor's
alerts on real text (``python -m bench.drift``); ``bench.experiments`` holds the A/B scripts still
worth rerunning (``python -m bench.experiments.NAME``); ``bench/results/`` keeps every figure, with
an index (``bench/results/README.md``, written by ``python -m bench.results_index``). All of it
runs from a source checkout, with ``pip install -e ".[bench]"``.
"""
