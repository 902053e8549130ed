"""The throughput harness behind `stream-trf bench`: the same texts through the bare model, the library, the worker and its peers."""
