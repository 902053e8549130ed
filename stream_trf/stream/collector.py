"""Python's cyclic garbage collector in a long-running worker: keep it off the model.

A loaded pipeline is ~480,000 objects the collector tracks (the model, spaCy's vocab and
pipes, faust's app). They live as long as the process, yet every full collection walks all of
them: on a near-zero-compute model each one took ~0.6 s with the GIL held — about 15 % of the
worker's CPU, and a pause in every record's latency. ``gc.freeze()`` moves what is alive now
into a generation the collector never walks; what a buffer allocates afterwards is collected
as before.

What a buffer allocates (docs, records, their dicts) lives for that buffer and dies by reference
counting, and hardly any of it is cyclic garbage (~450 objects in 6,000 documents). Python's
default collects the youngest generation every 700 net allocations, so each buffer's objects
were walked there and again in the middle generation while still alive: ~500 collections and
~1.6 % of the worker's CPU for nothing found. The worker collects young objects every
``YOUNG_THRESHOLD`` net allocations instead; cycles are still freed, later.
"""

from __future__ import annotations

import gc
import logging

log = logging.getLogger("stream_trf.worker")

# Net allocations of tracked objects between collections of the youngest generation (Python's
# default: 700). A buffer's objects die before this many accumulate.
YOUNG_THRESHOLD = 50_000


def freeze_survivors(when: str) -> int:
    """Collect once, then exempt every object still alive from later collections. Returns how
    many objects are frozen in all (each call adds what survived since the one before)."""
    gc.collect()
    gc.freeze()
    frozen = gc.get_freeze_count()
    log.info("%s: %d long-lived objects exempt from garbage collection", when, frozen)
    return frozen


def collect_young_objects_less_often(threshold: int = YOUNG_THRESHOLD) -> tuple[int, ...]:
    """Collect the youngest generation every ``threshold`` net allocations (the older
    generations' thresholds are left as they are). Returns the thresholds now in force."""
    _, *older = gc.get_threshold()
    gc.set_threshold(threshold, *older)
    log.info("garbage collection: the youngest generation every %d net allocations", threshold)
    return gc.get_threshold()
