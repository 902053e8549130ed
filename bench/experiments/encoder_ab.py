"""The wordpiece encoder that skips offsets against the one that computes them, in the batch
processor on the near-zero-compute model (issue 29).

Without an alignment (the worker's default unless records carry tokens or wordpieces) nothing
reads the pieces' character offsets, so ``tokenize_sentences`` encodes with the Rust tokenizer's
``encode_batch_fast``. This swaps the encoder in one process, rounds alternating over the same
buffers after a warm-up, and reports CPU-ms per document (the process's, every thread) for each
and their paired ratios: the two variants see the same drift of the host.

    python -m bench.experiments.encoder_ab --rounds 6 --docs 3000 \\
        --out bench/results/encoder-ab-cpu.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

from bench.harness.corpus import default_data_path, read_texts
from bench.harness.host import BUFFER, near_zero_model
from bench.harness.machine import describe, source_revision


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--docs", type=int, default=3000, help="documents per timed pass")
    ap.add_argument("--rounds", type=int, default=6, help="timed passes per encoder")
    ap.add_argument("--out", type=Path, help="write the result here as JSON")
    args = ap.parse_args()

    import stream_trf.text.wordpieces as wordpieces
    from stream_trf.settings import Settings
    from stream_trf.stream.processor import RawMessage
    from stream_trf.stream.records import Source
    from stream_trf.stream.worker import build_processor

    texts = read_texts(default_data_path(), 2 * args.docs)
    with tempfile.TemporaryDirectory() as tmp:
        processor = build_processor(Settings(model=str(near_zero_model(Path(tmp) / "model"))))

        def buffers(batch: list[str], first: int) -> list[list[RawMessage]]:
            messages = [
                RawMessage(orjson.dumps({"id": str(i), "text": t}), Source("in", 0, first + i))
                for i, t in enumerate(batch)
            ]
            return [messages[i : i + BUFFER] for i in range(0, len(messages), BUFFER)]

        for buffer in buffers(texts[args.docs :], 10**6):  # warm-up: vocabulary, caches
            processor.process(buffer)
        work = buffers(texts[: args.docs], 0)
        skipping = wordpieces._encode_without_offsets
        encoders = {
            "encode_batch": lambda backend: backend.encode_batch,
            "encode_batch_fast": skipping,
        }
        cpu: dict[str, list[float]] = {name: [] for name in encoders}
        try:
            for _ in range(args.rounds):
                for name, encoder in encoders.items():
                    wordpieces._encode_without_offsets = encoder
                    start = time.process_time()
                    for buffer in work:
                        processor.process(buffer)
                    cpu[name].append(1000 * (time.process_time() - start) / args.docs)
        finally:
            wordpieces._encode_without_offsets = skipping
    ratios = [b / a for a, b in zip(cpu["encode_batch"], cpu["encode_batch_fast"])]
    result: dict[str, Any] = {
        "benchmark": "encoder-ab",
        "command": "python -m bench.experiments.encoder_ab "
        f"--rounds {args.rounds} --docs {args.docs}" + (f" --out {args.out}" if args.out else ""),
        "machine": describe(),
        "code": source_revision(),
        "model": "near-zero (BERT, 1 layer, width 32, the default model's tokenizer)",
        "processor_cpu_ms_per_doc": {k: [round(x, 4) for x in v] for k, v in cpu.items()},
        "paired_ratio_fast_over_offsets": [round(r, 4) for r in ratios],
        "median_ratio": round(statistics.median(ratios), 4),
    }
    print(json.dumps(result, indent=1))
    if args.out:
        args.out.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
