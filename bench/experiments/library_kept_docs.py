"""The library's throughput with every doc of a run kept alive, or consumed as a stream; with and
without ``doc.tensor``.

A kept doc holds its wordpiece rows and its ``doc.tensor`` (~1.5 KB per wordpiece each for a
384-wide model), so a run that keeps them all takes fresh memory from the operating system for
every batch, and a VM pays for first touches of memory it has not backed yet. A stream frees each
batch's outputs and the next batch reuses them. In one process, chunks of the texts alternate
the arms (each chunk runs every arm, the order rotating), so all arms see the same drift of the
host; ratios are of summed wall times, each arm against the first. Kernel (system) seconds are
the process's, per arm.

    python -m bench.experiments.library_kept_docs --rounds 2 \\
        --out bench/results/library-kept-docs-ab-cpu.json
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

from bench.harness.corpus import default_data_path, read_texts
from bench.harness.machine import describe, source_revision

ARMS = ("kept, doc.tensor", "stream, doc.tensor", "kept, no doc.tensor", "stream, no doc.tensor")


def run_arm(nlp: Any, arm: str, texts: list[str], batch_size: int) -> tuple[float, float, int]:
    """Wall seconds, kernel seconds and wordpieces of ``nlp.pipe`` over ``texts`` in ``arm``."""
    nlp.get_pipe("trf_tok2vec").cfg["doc_tensor"] = "no doc.tensor" not in arm
    before = os.times()
    t0 = time.perf_counter()
    if arm.startswith("kept"):
        docs = list(nlp.pipe(texts, batch_size=batch_size))
        n_wp = sum(len(d._.trf_pieces.ids) for d in docs)
    else:
        n_wp = sum(len(d._.trf_pieces.ids) for d in nlp.pipe(texts, batch_size=batch_size))
    wall = time.perf_counter() - t0
    kernel = os.times().system - before.system
    return wall, kernel, n_wp  # the kept docs go on return, after the clock stopped


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--docs", type=int, default=2304, help="descriptions per round")
    ap.add_argument("--chunk", type=int, default=768, help="docs per arm between switches")
    ap.add_argument("--batch-size", type=int, default=256, help="nlp.pipe's batch_size")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--model", default=None, help="model directory (default: the default model)")
    ap.add_argument("--out", type=Path, default=None, help="write the result here as JSON")
    args = ap.parse_args()

    import stream_trf

    texts = read_texts(default_data_path(), args.docs)
    nlp = (
        stream_trf.load(args.model, classifier=None)
        if args.model
        else stream_trf.load(classifier=None)
    )
    list(nlp.pipe(texts[:100]))  # warm-up
    totals = {arm: [0.0, 0.0, 0] for arm in ARMS}
    chunks = [texts[a : a + args.chunk] for a in range(0, len(texts), args.chunk)]
    started = time.perf_counter()
    for r in range(args.rounds):
        for i, chunk in enumerate(chunks):
            k = (i + r) % len(ARMS)
            for arm in ARMS[k:] + ARMS[:k]:
                wall, kernel, n_wp = run_arm(nlp, arm, chunk, args.batch_size)
                totals[arm][0] += wall
                totals[arm][1] += kernel
                totals[arm][2] += n_wp
        print(
            f"round {r + 1}: "
            + ", ".join(f"{a} {t[2] / t[0]:,.0f} wp/s" for a, t in totals.items())
        )
    first = totals[ARMS[0]][0]
    result = {
        "benchmark": "library_kept_docs",
        "command": "python -m bench.experiments.library_kept_docs "
        f"--docs {args.docs} --chunk {args.chunk} --rounds {args.rounds}",
        "revision": source_revision(),
        "machine": describe(),
        "seconds": round(time.perf_counter() - started, 1),
        "arms": {
            arm: {
                "wall_s": round(wall, 2),
                "kernel_s": round(kernel, 2),
                "wordpieces_per_s": round(n_wp / wall, 1),
                "wall_over_first": round(wall / first, 4),
            }
            for arm, (wall, kernel, n_wp) in totals.items()
        },
    }
    print(json.dumps(result, indent=1))
    if args.out:
        args.out.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
