"""Which int8 scheme keeps the transformer's answers? Doc-vector cosine and label agreement vs
fp32, and speed, for dynamic int8 schemes on the default model.

    python bench/int8_schemes.py --docs 1000 --out bench/results/int8-fidelity-cpu.json
    python bench/int8_schemes.py --schemes "all Linear, per-channel|SmoothQuant" \\
        --out /tmp/int8-smoothquant.json

Each scheme runs in a fresh process (``bench.harness.measure fidelity``).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from bench.harness.corpus import default_data_path, read_texts
from bench.harness.machine import describe
from bench.harness.measure import run_measurement
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
    # SmoothQuant: activation outliers moved into the weights, calibrated on other docs
    "per-channel, SmoothQuant alpha 0.5": {
        "per_channel": True,
        "keep_float": [],
        "smooth_alpha": 0.5,
    },
    "per-channel, SmoothQuant alpha 0.7": {
        "per_channel": True,
        "keep_float": [],
        "smooth_alpha": 0.7,
    },
    "per-channel, SmoothQuant alpha 0.8": {
        "per_channel": True,
        "keep_float": [],
        "smooth_alpha": 0.8,
    },
    "per-channel, SmoothQuant alpha 0.9": {
        "per_channel": True,
        "keep_float": [],
        "smooth_alpha": 0.9,
    },
    "per-channel, SmoothQuant alpha 0.8, FFN output projections in fp32": {
        "per_channel": True,
        "keep_float": ["encoder.layer.?.output.dense"],
        "smooth_alpha": 0.8,
    },
}


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--data", default=None)
    ap.add_argument("--docs", type=int, default=1000)
    ap.add_argument("--words-per-batch", type=int, default=None)
    ap.add_argument(
        "--calibration-docs",
        type=int,
        default=256,
        help="SmoothQuant calibrates on this many docs from 10,000 docs past the measured ones",
    )
    ap.add_argument(
        "--schemes",
        default="",
        help="only schemes whose name contains one of these ('|'-separated)",
    )
    ap.add_argument("--out", default="bench/results/int8-fidelity-cpu.json")
    args = ap.parse_args()
    data = Path(args.data) if args.data else default_data_path()
    skip = args.docs + 10_000
    every = read_texts(data, skip + args.calibration_docs)
    texts = every[: args.docs]
    tmp = Path(tempfile.mkdtemp())
    texts_file = tmp / "texts.jsonl"
    texts_file.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))
    calibration_file = tmp / "calibration.jsonl"
    calibration_file.write_text("".join(json.dumps({"text": t}) + "\n" for t in every[skip:]))
    wanted = [w for w in args.schemes.split("|") if w]
    rows = {}
    for name, scheme in SCHEMES.items():
        if wanted and not any(w in name for w in wanted):
            continue
        options = {"precision": "int8", "words_per_batch": args.words_per_batch, **scheme}
        if "smooth_alpha" in scheme:
            options["calibration_file"] = str(calibration_file)
        rows[name] = run_measurement("fidelity", texts_file, DEFAULT_MODEL, options)
        print(name, json.dumps(rows[name]), flush=True)
    result = {
        "benchmark": "int8_schemes",
        "command": " ".join(["python", "-m", "bench.experiments.int8_schemes", *sys.argv[1:]]),
        "calibration": f"{args.calibration_docs} docs starting {skip} docs into the data",
        "machine": describe(),
        "model": DEFAULT_MODEL,
        "docs": len(texts),
        "gate": {"min_cosine": 0.99, "label_agreement": 0.99},
        "schemes": rows,
        "passes_any": any(r["passes"] for r in rows.values()),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
