"""One measurement in a process of its own: ``python -m stream_trf.benchmark.measure KIND …``.

Each figure gets a fresh process so that its peak RSS is its own and no measurement warms the
caches of the next. The last line of stdout is the result as JSON.
"""

from __future__ import annotations

import argparse
import json

from .machine import peak_rss_mb


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("kind", choices=("ceiling", "library", "naive", "fidelity"))
    ap.add_argument("--texts", required=True, help="JSONL with 'text'")
    ap.add_argument("--model", required=True)
    ap.add_argument("--options", default="{}", help="keyword arguments as JSON")
    args = ap.parse_args(argv)
    with open(args.texts, encoding="utf-8") as f:
        texts = [json.loads(line)["text"] for line in f]
    options = json.loads(args.options)
    if args.kind == "ceiling":
        from ..model.source import resolve_model_dir
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
    else:
        from ..model.source import resolve_model_dir
        from .peers import naive_hf_loop

        result = naive_hf_loop(texts, resolve_model_dir(args.model), **options)
    result["peak_rss_mb"] = peak_rss_mb()
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
