"""spaCy's tokenizer and sentencizer in the worker's memory zones, with a zone's new lexemes lean
(the punctuation and space flags only) or with every lexical attribute of the language.

Two pipelines, each warmed up as the worker warms up its vocabulary (its first buffers outside
any zone), then the same buffers of descriptions through both in turn, the order alternating
from one pass to the next, in one process: both arms see the same drift of this host. The
figure is the lean arm's CPU over the full arm's, per pass and in the median of the passes
(``stream/zones.py``, issue 29).

    python -m bench.experiments.lean_lexemes --out bench/results/lean-lexemes-ab-cpu.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any

from bench.harness.corpus import default_data_path, read_texts
from bench.harness.host import buffers, spacy_in_zones
from bench.harness.machine import describe, source_revision

ARMS = ("full", "lean")


def cpu_ms_per_doc(nlp: Any, zones: Any, texts: list[str]) -> float:
    t0 = time.process_time()
    for batch in buffers(texts):
        with zones.buffer(sum(map(len, batch))):
            for _ in nlp.pipe(batch):
                pass
    return 1000 * (time.process_time() - t0) / len(texts)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--docs", type=int, default=6144, help="descriptions per pass")
    ap.add_argument("--warmup-docs", type=int, default=3000, help="the vocabulary's warm-up")
    ap.add_argument("--passes", type=int, default=8, help="passes of each arm, alternating")
    ap.add_argument("--out", type=Path, default=None, help="write the result here as JSON")
    args = ap.parse_args()

    from stream_trf.settings import Settings

    texts = read_texts(default_data_path(), args.warmup_docs + args.docs)
    warmup, texts = texts[: args.warmup_docs], texts[args.warmup_docs :]
    warmup_chars = Settings().memory.vocab_warmup_chars
    arms = {arm: spacy_in_zones(warmup, warmup_chars, arm == "lean") for arm in ARMS}
    ms: dict[str, list[float]] = {arm: [] for arm in ARMS}
    started = time.perf_counter()
    for p in range(args.passes):
        for arm in ARMS if p % 2 == 0 else ARMS[::-1]:
            ms[arm].append(cpu_ms_per_doc(*arms[arm], texts))
        print(f"pass {p + 1}: full {ms['full'][-1]:.4f}, lean {ms['lean'][-1]:.4f} CPU-ms/doc")
    ratios = [lean / full for lean, full in zip(ms["lean"], ms["full"])]
    result = {
        "benchmark": "lean_lexemes",
        "command": "python -m bench.experiments.lean_lexemes "
        f"--docs {args.docs} --warmup-docs {args.warmup_docs} --passes {args.passes}",
        "revision": source_revision(),
        "machine": describe(),
        "seconds": round(time.perf_counter() - started, 1),
        "warmup_chars": warmup_chars,
        "cpu_ms_per_doc": {arm: [round(x, 4) for x in v] for arm, v in ms.items()},
        "lean_over_full_by_pass": [round(r, 4) for r in ratios],
        "lean_over_full_median": round(statistics.median(ratios), 4),
        "lean_over_full_pooled": round(sum(ms["lean"]) / sum(ms["full"]), 4),
    }
    print(json.dumps({k: v for k, v in result.items() if k != "machine"}, indent=1))
    if args.out:
        args.out.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
