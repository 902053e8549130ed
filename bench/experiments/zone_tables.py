"""spaCy's memory zones and the vocab's hash tables: RSS over millions of new words, with the
zone alone and with ``buffer_zone`` (stream/zones.py), each in a fresh process.

A stream keeps bringing words no buffer has seen (package names, versions, URLs). Each zone
here tokenizes 20,000 new random words with ``spacy.blank("en")`` (the tokenizer and vocab
are where the tables live; the transformer adds nothing to them):

    python -m bench.experiments.zone_tables --zones 200 --out bench/results/zone-tables-cpu.json
"""

from __future__ import annotations

import argparse
import json
import random
import string
import subprocess
import sys
import time
from pathlib import Path

WORDS_PER_ZONE = 20_000


def rss_mb() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 // 2**20


def one(variant: str, zones: int, every: int) -> list[dict[str, object]]:
    import spacy

    from stream_trf.stream.zones import buffer_zone, table_sizes

    nlp = spacy.blank("en")
    rng = random.Random(0)
    rows: list[dict[str, object]] = []
    t0 = time.perf_counter()
    for z in range(1, zones + 1):
        words = ["".join(rng.choices(string.ascii_lowercase, k=10)) for _ in range(WORDS_PER_ZONE)]
        texts = [" ".join(words[i : i + 100]) for i in range(0, len(words), 100)]
        with buffer_zone(nlp) if variant == "buffer_zone" else nlp.memory_zone():
            for _doc in nlp.pipe(texts):
                pass
        if z % every == 0 or z == 1:
            sizes = table_sizes(nlp.vocab)
            rows.append(
                {
                    "new_words": z * WORDS_PER_ZONE,
                    "rss_mb": rss_mb(),
                    "string_table_cells": sizes.strings,
                    "lexeme_table_cells": sizes.lexemes,
                    "seconds": round(time.perf_counter() - t0, 1),
                }
            )
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--zones", type=int, default=200)
    ap.add_argument("--every", type=int, default=25, help="report every N zones")
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--variant", choices=("memory_zone", "buffer_zone"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.variant:  # the child: one variant, one process
        print(json.dumps(one(args.variant, args.zones, args.every)))
        return
    from bench.harness.machine import describe

    result: dict[str, object] = {
        "benchmark": "zone-tables",
        "command": " ".join(["python", "-m", "bench.experiments.zone_tables", *sys.argv[1:]]),
        "machine": describe(),
        "words_per_zone": WORDS_PER_ZONE,
    }
    sizes = ["--zones", str(args.zones), "--every", str(args.every)]
    for variant in ("memory_zone", "buffer_zone"):
        out = subprocess.run(
            [sys.executable, "-m", "bench.experiments.zone_tables", "--variant", variant, *sizes],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        rows = json.loads(out.strip().splitlines()[-1])
        result[variant] = rows
        first, last = rows[0], rows[-1]
        print(
            f"{variant:12s} RSS {first['rss_mb']} -> {last['rss_mb']} MB over "
            f"{last['new_words']:,} new words; tables {last['string_table_cells']:,} / "
            f"{last['lexeme_table_cells']:,} cells"
        )
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
