"""Library throughput: `nlp.pipe` of the wrapped transformer vs the bare model on the same
wordpieces, and a sweep of `words_per_batch`.

    python bench/library_throughput.py --docs 1000 --out bench/results/library-throughput-cpu.json

Reports words/s, wordpieces/s (boundary tokens count as work) and padding efficiency (real /
padded wordpieces). The "bare" figure runs the HF model on the very sub-batches the library
planned, with no tokenization, alignment or rebuild: it shows what the library's own work costs.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import time
from pathlib import Path

import torch

import stream_trf


def read_texts(path: Path, n: int) -> list[str]:
    texts = []
    with gzip.open(path, "rt", encoding="utf-8") as f:
        for line in f:
            texts.append(json.loads(line)["text"])
            if len(texts) >= n:
                break
    return texts


def run_library(texts: list[str], words_per_batch: int, batch_size: int) -> dict:
    nlp = stream_trf.load(words_per_batch=words_per_batch)
    list(nlp.pipe(texts[:20]))  # warm-up
    runner = nlp.get_pipe("trf_tok2vec").runner
    runner.stats.__init__()  # type: ignore[misc]
    t0 = time.perf_counter()
    docs = list(nlp.pipe(texts, batch_size=batch_size))
    elapsed = time.perf_counter() - t0
    words = sum(sum(not t.is_space and not t.is_punct for t in d) for d in docs)
    n_wp = sum(len(d._.trf_word_pieces) for d in docs)
    s = runner.stats
    return (
        {
            "words_per_batch": words_per_batch,
            "batch_size": batch_size,
            "seconds": round(elapsed, 3),
            "words": words,
            "wordpieces": n_wp,
            "words_per_s": round(words / elapsed, 1),
            "wordpieces_per_s": round(n_wp / elapsed, 1),
            "padding_efficiency": round(s.real_wordpieces / max(s.padded_wordpieces, 1), 4),
            "sub_batches": s.batches,
        },
        nlp,
        docs,
    )


def run_bare(nlp, docs, words_per_batch: int) -> dict:
    """The HF model alone on the sub-batches the library planned."""
    from stream_trf.text.batching import make_batches

    t2v = nlp.get_pipe("trf_tok2vec")
    runner = t2v.runner
    seqs = []
    for d in docs:
        wp = d._.trf_data
        for s in range(wp.n_sentences):
            sl = wp.sentence(s)
            ids = wp.ids[sl][: runner.max_length]
            seqs.append(
                (ids, None if wp.type_ids is None else wp.type_ids[sl][: runner.max_length])
            )
    batches = make_batches([len(x[0]) for x in seqs], words_per_batch)
    padded = [runner.pad([seqs[i][0] for i in b], [seqs[i][1] for i in b]) for b in batches]
    real = sum(len(x[0]) for x in seqs)
    t0 = time.perf_counter()
    with torch.inference_mode():
        for inputs in padded:
            runner.model(**inputs)
    elapsed = time.perf_counter() - t0
    return {"seconds": round(elapsed, 3), "wordpieces_per_s": round(real / elapsed, 1)}


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--data",
        default=str(
            Path(__file__).resolve().parents[2] / "shared/data/debian-descriptions.jsonl.gz"
        ),
    )
    ap.add_argument("--docs", type=int, default=1000)
    ap.add_argument("--sweep", default="1000,3000,6000", help="words_per_batch values")
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--out", default="bench/results/library-throughput-cpu.json")
    args = ap.parse_args()
    texts = read_texts(Path(args.data), args.docs)
    rows = []
    for wpb in [int(x) for x in args.sweep.split(",")]:
        lib, nlp, docs = run_library(texts, wpb, args.batch_size)
        bare = run_bare(nlp, docs, wpb)
        lib["bare_model_same_batches_wordpieces_per_s"] = bare["wordpieces_per_s"]
        lib["library_over_bare"] = round(lib["wordpieces_per_s"] / bare["wordpieces_per_s"], 3)
        rows.append(lib)
        print(json.dumps(lib))
    result = {
        "benchmark": "library_throughput",
        "command": "python bench/library_throughput.py "
        + " ".join(f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items() if k != "data"),
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "cpus": os.cpu_count(),
            "torch": torch.__version__,
            "torch_threads": torch.get_num_threads(),
            "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        },
        "model": stream_trf.DEFAULT_MODEL,
        "docs": len(texts),
        "results": rows,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
