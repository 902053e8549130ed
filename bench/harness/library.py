"""The library: ``nlp.pipe`` of the wrapped transformer, and the bare model on its own batches.

The second figure runs the HF model alone on exactly the padded sub-batches the library planned;
the ratio of the two is what the library's own work (tokenizing, aligning, rebuilding
``doc.tensor``) costs on top of the model.

Both consume ``nlp.pipe`` as a stream, as a corpus job does and as the ceiling treats its own
outputs: each doc's rows and ``doc.tensor`` are dropped once its wordpieces are noted. Keeping
every doc of the run alive instead makes each batch's outputs fresh memory, which costs a VM
its page provisioning (``bench/experiments/library_kept_docs.py``).

The third is the library against the ceiling *paired*: chunk by chunk of the texts, the library
and then the bare model on the same chunk's wordpieces packed in the ceiling's best shape, in
one process. This host's speed drifts by tens of percent over minutes; alternating every few
seconds puts both sides of the ratio under the same drift.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch

from .ceiling import _sync, ceiling_model, measure_packed, packed_rows


def sentence_wordpieces(texts: list[str], model: str) -> list[np.ndarray]:
    """Every sentence's wordpiece ids (boundary tokens included), as the library makes them."""
    import stream_trf

    nlp = stream_trf.load(model, classifier=None)
    return sentence_ids(nlp.pipe(texts, disable=["trf_tok2vec"], batch_size=256))


def sentence_ids(docs: Any) -> list[np.ndarray]:
    """The wordpiece ids of every sentence of ``docs``, in order."""
    out: list[np.ndarray] = []
    for doc in docs:
        wp = doc._.trf_pieces
        out.extend(wp.ids[wp.sentence(s)] for s in range(wp.n_sentences))
    return out


def _sentences(wp: Any, max_length: int) -> list[tuple[np.ndarray, np.ndarray | None]]:
    """A doc's sentences as the model's inputs (ids, token types), cut to ``max_length``."""
    out = []
    for i in range(wp.n_sentences):
        sl = wp.sentence(i)
        types = None if wp.type_ids is None else wp.type_ids[sl][:max_length]
        out.append((wp.ids[sl][:max_length], types))
    return out


def run_library(
    texts: list[str],
    *,
    model: str,
    words_per_batch: int,
    batch_size: int = 256,
    classifier: Any = None,
    bare: bool = True,
    packing: str = "auto",
    ceiling_shape: dict[str, Any] | None = None,
    pair_chunk_docs: int = 500,
) -> dict[str, Any]:
    import stream_trf
    from stream_trf.text.batching import make_batches

    nlp = stream_trf.load(
        model, words_per_batch=words_per_batch, classifier=classifier, packing=packing
    )
    list(nlp.pipe(texts[:20]))  # warm-up: weights paged in, kernels chosen
    t2v = nlp.get_pipe("trf_tok2vec")
    runner = t2v.runner
    runner.stats.__init__()
    _sync(runner.device)
    t0 = time.perf_counter()
    seqs_kept: list[tuple[np.ndarray, np.ndarray | None]] = []
    n_wp = 0
    for doc in nlp.pipe(texts, batch_size=batch_size):
        wp = doc._.trf_pieces
        n_wp += len(wp.ids)
        if bare:
            seqs_kept.extend(_sentences(wp, runner.max_length))
    _sync(runner.device)
    elapsed = time.perf_counter() - t0
    s = runner.stats
    result: dict[str, Any] = {
        "name": "library (nlp.pipe)",
        "words_per_batch": words_per_batch,
        "batch_size": batch_size,
        "packed": runner.packed,
        "graph": "traced" if runner.traced is not None else "eager",
        "seconds": round(elapsed, 3),
        "wordpieces": n_wp,
        "wordpieces_per_s": round(n_wp / elapsed, 1),
        "padding_efficiency": round(s.real_wordpieces / max(s.padded_wordpieces, 1), 4),
        "sub_batches": s.batches,
    }
    if bare:
        seqs = seqs_kept
        cost = None if runner.packed else t2v.cfg["batch_cost"]
        batches = make_batches([len(x[0]) for x in seqs], words_per_batch, cost)
        padded = [runner.pad([seqs[i][0] for i in b], [seqs[i][1] for i in b]) for b in batches]
        real = sum(len(x[0]) for x in seqs)
        with torch.inference_mode():
            _sync(runner.device)
            t1 = time.perf_counter()
            for inputs in padded:  # the graph the library ran (stream_trf/model/traced.py)
                runner.infer(inputs)
            _sync(runner.device)
        bare_s = time.perf_counter() - t1
        result["bare_model_same_batches_wordpieces_per_s"] = round(real / bare_s, 1)
        result["library_over_bare"] = round(
            result["wordpieces_per_s"] / result["bare_model_same_batches_wordpieces_per_s"], 3
        )
    if ceiling_shape is not None:
        result["paired"] = paired_with_ceiling(
            nlp, texts, ceiling_shape, chunk_docs=pair_chunk_docs, batch_size=batch_size
        )
    return result


def paired_with_ceiling(
    nlp: Any,
    texts: list[str],
    shape: dict[str, Any],
    *,
    chunk_docs: int = 500,
    batch_size: int = 256,
) -> dict[str, Any]:
    """The library and the packed ceiling, alternating chunk by chunk on the same wordpieces.

    Each chunk is timed as ``nlp.pipe`` over its texts, then as the bare model over the
    chunk's wordpieces (boundary tokens included) packed into ``shape`` (the ceiling's best:
    ``graph``, ``lanes``, ``row_length``, ``rows_per_batch``). The ratio is of the summed times. Chunk
    edges cost the library its pipelining (it starts and drains once per chunk), so the
    paired ratio errs low, not high.
    """
    runner = nlp.get_pipe("trf_tok2vec").runner
    length, per_batch, lanes = shape["row_length"], shape["rows_per_batch"], shape["lanes"]
    model = ceiling_model(runner, shape.get("graph", "eager"))
    lib_s = ceil_s = 0.0
    lib_wp = ceil_wp = 0
    chunks = []
    for a in range(0, len(texts), chunk_docs):
        chunk = texts[a : a + chunk_docs]
        _sync(runner.device)
        t0 = time.perf_counter()
        seqs = sentence_ids(nlp.pipe(chunk, batch_size=batch_size))
        _sync(runner.device)
        lib = time.perf_counter() - t0
        n_wp = int(sum(len(x) for x in seqs))
        rows = packed_rows(seqs, length)
        if len(rows) < per_batch * lanes:
            continue  # a tail too short to fill the ceiling's shape is not a fair pair
        ceil = measure_packed(model, runner.device, rows, per_batch, lanes)
        lib_s += lib
        lib_wp += n_wp
        ceil_s += ceil
        ceil_wp += int(rows.size)
        chunks.append(
            {
                "docs": len(chunk),
                "library_wordpieces_per_s": round(n_wp / lib, 1),
                "ceiling_wordpieces_per_s": round(rows.size / ceil, 1),
            }
        )
    if not chunks:
        return {"chunks": []}
    library_rate = lib_wp / lib_s
    ceiling_rate = ceil_wp / ceil_s
    return {
        "chunk_docs": chunk_docs,
        "shape": dict(shape),
        "library_wordpieces_per_s": round(library_rate, 1),
        "ceiling_wordpieces_per_s": round(ceiling_rate, 1),
        "library_over_ceiling": round(library_rate / ceiling_rate, 3),
        "chunks": chunks,
    }
