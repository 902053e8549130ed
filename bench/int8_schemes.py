"""Which int8 scheme keeps the transformer's answers? Doc-vector cosine and label agreement vs
fp32, and speed, for dynamic int8 schemes on the default model.

    python bench/int8_schemes.py --docs 1000 --out bench/results/int8-fidelity-cpu.json

Each scheme runs in a fresh process (``stream_trf.benchmark.measure fidelity``).
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from stream_trf.benchmark.corpus import default_data_path, read_texts
from stream_trf.benchmark.harness import _measure
from stream_trf.benchmark.machine import describe
from stream_trf.model.source import DEFAULT_MODEL

# fnmatch's "*" crosses dots: "*.output.dense" matches both attention.output.dense and the FFN's
# output.dense; the FFN's alone is "encoder.layer.?.output.dense".
SCHEMES = {
    "all Linear, per-tensor": {"per_channel": False, "keep_float": []},
    "all Linear, per-channel": {"per_channel": True, "keep_float": []},
    "per-channel, attention and FFN output projections in fp32": {
        "per_channel": True,
        "keep_float": ["*.output.dense"],
    },
    "per-channel, only Q/K/V and the pooler in int8": {
        "per_channel": True,
        "keep_float": ["*.output.dense", "*.intermediate.dense"],
    },
    "per-channel, last 2 layers in fp32": {
        "per_channel": True,
        "keep_float": ["encoder.layer.4.*", "encoder.layer.5.*"],
    },
}


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--data", default=None)
    ap.add_argument("--docs", type=int, default=1000)
    ap.add_argument("--words-per-batch", type=int, default=None)
    ap.add_argument("--out", default="bench/results/int8-fidelity-cpu.json")
    args = ap.parse_args()
    texts = read_texts(Path(args.data) if args.data else default_data_path(), args.docs)
    texts_file = Path(tempfile.mkdtemp()) / "texts.jsonl"
    texts_file.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))
    rows = {}
    for name, scheme in SCHEMES.items():
        options = {"precision": "int8", "words_per_batch": args.words_per_batch, **scheme}
        rows[name] = _measure("fidelity", texts_file, DEFAULT_MODEL, options)
        print(name, json.dumps(rows[name]), flush=True)
    result = {
        "benchmark": "int8_schemes",
        "command": f"python bench/int8_schemes.py --docs {args.docs}",
        "machine": describe(),
        "model": DEFAULT_MODEL,
        "docs": len(texts),
        "gate": {"min_cosine": 0.99, "label_agreement": 0.99},
        "schemes": rows,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
