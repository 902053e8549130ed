"""The throughput harness behind ``stream-trf bench``: the same texts through the bare model, the
library, the worker and its peers, each figure measured in a process of its own."""
