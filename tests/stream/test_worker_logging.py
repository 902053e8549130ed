"""The worker's log level holds for the libraries under it."""

from __future__ import annotations


def test_faust_leaves_the_root_logger_at_the_workers_level() -> None:
    """faust's terminal spinner set the root logger to DEBUG at a log level of warn or above,
    so every debug line of aiokafka and faust was built (and dropped) on the hot path."""
    import logging

    import faust

    from stream_trf.stream.worker import faust_worker

    root = logging.getLogger("test-root")
    root.addHandler(logging.NullHandler())
    root.setLevel(logging.WARNING)
    worker = faust_worker(
        faust.App("t-spinner", broker="kafka://127.0.0.1:1"), "warn", lambda: None
    )
    worker.on_setup_root_logger(root, logging.WARNING)
    assert root.level == logging.WARNING
    plain = faust.Worker(faust.App("t-spinner-2", broker="kafka://127.0.0.1:1"), loglevel="warn")
    plain.on_setup_root_logger(root, logging.WARNING)
    assert root.level == logging.DEBUG  # what faust itself does (why the override exists)
