"""The library: ``nlp.pipe`` of the wrapped transformer, and the bare model on its own batches.

The second figure runs the HF model alone on exactly the padded sub-batches the library planned;
the ratio of the two is what the library's own work (tokenizing, aligning, rebuilding
``doc.tensor``) costs on top of the model.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch

from .ceiling import _sync


def sentence_wordpieces(texts: list[str], model: str) -> list[np.ndarray]:
    """Every sentence's wordpiece ids (boundary tokens included), as the library makes them."""
    import stream_trf

    nlp = stream_trf.load(model, classifier=None)
    docs = nlp.pipe(texts, disable=["trf_tok2vec"], batch_size=256)
    out: list[np.ndarray] = []
    for doc in docs:
        wp = doc._.trf_data
        out.extend(wp.ids[wp.sentence(s)] for s in range(wp.n_sentences))
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
) -> dict[str, Any]:
    import stream_trf

    from ..text.batching import make_batches

    nlp = stream_trf.load(
        model, words_per_batch=words_per_batch, classifier=classifier, packing=packing
    )
    list(nlp.pipe(texts[:20]))  # warm-up: weights paged in, kernels chosen
    t2v = nlp.get_pipe("trf_tok2vec")
    runner = t2v.runner
    runner.stats.__init__()
    _sync(runner.device)
    t0 = time.perf_counter()
    docs = list(nlp.pipe(texts, batch_size=batch_size))
    _sync(runner.device)
    elapsed = time.perf_counter() - t0
    n_wp = sum(len(d._.trf_word_pieces) for d in docs)
    s = runner.stats
    result: dict[str, Any] = {
        "name": "library (nlp.pipe)",
        "words_per_batch": words_per_batch,
        "batch_size": batch_size,
        "packed": runner.packed,
        "seconds": round(elapsed, 3),
        "wordpieces": n_wp,
        "wordpieces_per_s": round(n_wp / elapsed, 1),
        "padding_efficiency": round(s.real_wordpieces / max(s.padded_wordpieces, 1), 4),
        "sub_batches": s.batches,
    }
    if bare:
        seqs = []
        for d in docs:
            wp = d._.trf_data
            for i in range(wp.n_sentences):
                sl = wp.sentence(i)
                ids = wp.ids[sl][: runner.max_length]
                types = None if wp.type_ids is None else wp.type_ids[sl][: runner.max_length]
                seqs.append((ids, types))
        batches = make_batches([len(x[0]) for x in seqs], words_per_batch)
        padded = [runner.pad([seqs[i][0] for i in b], [seqs[i][1] for i in b]) for b in batches]
        real = sum(len(x[0]) for x in seqs)
        with torch.inference_mode():
            _sync(runner.device)
            t1 = time.perf_counter()
            for inputs in padded:
                runner.model(**inputs)
            _sync(runner.device)
        bare_s = time.perf_counter() - t1
        result["bare_model_same_batches_wordpieces_per_s"] = round(real / bare_s, 1)
        result["library_over_bare"] = round(
            result["wordpieces_per_s"] / result["bare_model_same_batches_wordpieces_per_s"], 3
        )
    return result
