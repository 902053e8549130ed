"""One measurement in a process of its own: ``python -m bench.harness.measure KIND …``.

Each figure gets a fresh process so that its peak RSS is its own and no measurement warms the
caches of the next. The last line of stdout is the result as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from .machine import peak_rss_mb

KINDS = ("ceiling", "library", "naive", "fidelity", "floor", "processor")
# The folder that holds the ``bench`` package: the child imports it from there, wherever it runs.
SOURCE_ROOT = Path(__file__).resolve().parents[2]


class MeasurementFailed(RuntimeError):
    """A measurement subprocess failed; its output tail is in the message."""


def run_measurement(
    kind: str, texts_file: Path, model: str, options: dict[str, Any]
) -> dict[str, Any]:
    """Measure ``kind`` on the texts of ``texts_file`` (JSONL with 'text') in a fresh process;
    ``options`` are the keyword arguments of that measurement's function."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(SOURCE_ROOT), env.get("PYTHONPATH", "")) if p
    )
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.harness.measure",
            kind,
            "--texts",
            str(texts_file),
            "--model",
            model,
            "--options",
            json.dumps(options),
        ],
        capture_output=True,
        text=True,
        env=env,
    )
    if proc.returncode != 0:
        raise MeasurementFailed(f"{kind} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("kind", choices=KINDS)
    ap.add_argument("--texts", required=True, help="JSONL with 'text'")
    ap.add_argument("--model", required=True)
    ap.add_argument("--options", default="{}", help="keyword arguments as JSON")
    args = ap.parse_args(argv)
    with open(args.texts, encoding="utf-8") as f:
        texts = [json.loads(line)["text"] for line in f]
    options = json.loads(args.options)
    if args.kind == "ceiling":
        from stream_trf.model.source import resolve_model_dir

        from .ceiling import packed_ceiling
        from .library import sentence_wordpieces

        seqs = sentence_wordpieces(texts, args.model)
        result = packed_ceiling(resolve_model_dir(args.model), seqs, **options)
        result["wordpieces"] = int(sum(len(s) for s in seqs))
    elif args.kind == "fidelity":
        from .fidelity import fidelity

        result = fidelity(texts, model=args.model, **options)
    elif args.kind == "library":
        from .library import run_library

        result = run_library(texts, model=args.model, **options)
    elif args.kind == "floor":
        from .host import floor

        result = floor(texts, args.model, **options)
    elif args.kind == "processor":
        from .host import processor

        result = processor(texts, args.model, **options)
    else:
        from stream_trf.model.source import resolve_model_dir

        from .peers import naive_hf_loop

        result = naive_hf_loop(texts, resolve_model_dir(args.model), **options)
    result["peak_rss_mb"] = peak_rss_mb()
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
