"""How large an enriched record gets per token, in each vector encoding (issue 27).

Runs the default model (all-MiniLM-L6-v2) over the first N Debian descriptions of the shared
data, builds each doc's enriched record as the worker does (``--emit-tokens``, and with
``--emit-wordpieces``) in each ``--vector-encoding``, and records bytes per token (the record
with token fields less the one without, over the doc's tokens), the share of records over 1 MB
(Kafka's default limit) and the largest record. Sizes depend on the model's width (384 here)
and not on the machine: no timing.

    python -m bench.experiments.record_size --docs 500
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import orjson

import stream_trf
from bench.harness.corpus import default_data_path, read_texts
from bench.harness.machine import describe
from stream_trf.schemas.vectors import ENCODINGS
from stream_trf.stream.enrich import HeavyFields, ModelInfo, dumps, enrich
from stream_trf.stream.records import Source, parse


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--docs", type=int, default=500)
    ap.add_argument(
        "--data", type=Path, default=None, help="JSONL(.gz) with 'text' (default: the shared data)"
    )
    ap.add_argument("--out", default="bench/results/record-size.json")
    args = ap.parse_args()
    texts = read_texts(args.data or default_data_path(), args.docs)
    nlp = stream_trf.load(outputs="rows")
    model = ModelInfo("all-MiniLM-L6-v2", "bench")
    rows: dict[str, dict[str, list[float]]] = {}
    n_tokens = 0
    for i, doc in enumerate(nlp.pipe(texts, batch_size=64)):
        rec = parse(
            orjson.dumps({"id": str(i), "text": texts[i]}), Source("in", 0, i), max_text_chars=10**7
        )
        n_tokens += len(doc)
        for enc in ENCODINGS:
            base = len(dumps(enrich(doc, rec, model, {}, HeavyFields(vector_encoding=enc))))
            tokens = len(
                dumps(enrich(doc, rec, model, {}, HeavyFields(tokens=True, vector_encoding=enc)))
            )
            both = len(
                dumps(
                    enrich(
                        doc,
                        rec,
                        model,
                        {},
                        HeavyFields(tokens=True, wordpieces=True, vector_encoding=enc),
                    )
                )
            )
            r = rows.setdefault(
                enc, {"base": [], "tokens": [], "both": [], "per_token": [], "per_token_both": []}
            )
            r["base"].append(base)
            r["tokens"].append(tokens)
            r["both"].append(both)
            r["per_token"].append((tokens - base) / max(len(doc), 1))
            r["per_token_both"].append((both - base) / max(len(doc), 1))
    result: dict[str, Any] = {
        "what": "enriched record size per token, by --vector-encoding (issue 27)",
        "command": " ".join(["python", "-m", "bench.experiments.record_size", *sys.argv[1:]]),
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": describe(),
        "model": "all-MiniLM-L6-v2 (width 384)",
        "docs": len(texts),
        "tokens": n_tokens,
        "encodings": {},
    }
    for enc, r in rows.items():
        per_token = np.asarray(r["per_token"])
        result["encodings"][enc] = {
            "record_without_tokens_bytes_median": float(np.median(r["base"])),
            "bytes_per_token_emit_tokens_median": round(float(np.median(per_token)), 1),
            "bytes_per_token_emit_tokens_and_wordpieces_median": round(
                float(np.median(r["per_token_both"])), 1
            ),
            "largest_record_emit_tokens_bytes": int(max(r["tokens"])),
            "records_over_1MB_emit_tokens": int(sum(s > 1_000_000 for s in r["tokens"])),
            "tokens_fitting_in_1MB_emit_tokens": int(
                (1_000_000 - np.median(r["base"])) / np.median(per_token)
            ),
        }
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result["encodings"], indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
