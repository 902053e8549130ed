"""What spaCy's memory zones cost the tokenizer, and what a vocabulary warm-up gives back.

spaCy's tokenizer caches nothing inside a memory zone, so in a zone every chunk of text goes
through its prefix, suffix and infix rules again and every word becomes a lexeme again. The
worker runs each buffer in a zone (stream/zones.py), after a warm-up (``vocab_warmup_chars``)
that runs outside any.

``tokenizer`` (the default): ``spacy.blank("en")``'s tokenizer alone, 256-doc buffers in
``buffer_zone``, over 2,048 docs no warm-up has seen, after a warm-up of N other docs outside
any zone. Prints one JSON line per N: seconds per 2,048 new docs (4 passes, each over new
docs), and RSS the warm-up kept.

``worker``: the worker end to end (embedded broker, one worker process per run), variants of
``vocab_warmup_chars`` alternating per round: the first 2,000 docs it sees (the warm-up
itself, where there is one) and then 2,000 docs it has not seen, each produced at once and
timed to the last enriched record, with the worker's CPU per doc.

    python -m bench.experiments.zone_warmup tokenizer --warmup-docs 0 1000 2000 4000 8000
    python -m bench.experiments.zone_warmup worker --variants 0 1000000 --rounds 3 \\
        --out bench/results/zone-warmup-worker-cpu.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.harness.corpus import default_data_path, read_texts
from bench.harness.machine import cpu_between, describe, process_cpu

# The folder that holds the ``bench`` package, for the child processes.
SOURCE_ROOT = Path(__file__).resolve().parents[2]
BUFFER = 256
NEW_DOCS = 2048


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / 2**20


def tokenizer(warmup_docs: int, data: Path, passes: int = 4) -> dict[str, Any]:
    import spacy

    from stream_trf.stream.zones import buffer_zone

    texts = read_texts(data, warmup_docs + passes * NEW_DOCS)
    nlp = spacy.blank("en")
    before = _rss_mb()
    t0 = time.perf_counter()
    for text in texts[:warmup_docs]:
        nlp.make_doc(text)
    warm_s = time.perf_counter() - t0
    kept = _rss_mb() - before
    new = texts[warmup_docs:]
    per_pass = []
    for p in range(passes):
        t0 = time.perf_counter()
        for b in range(0, NEW_DOCS, BUFFER):
            with buffer_zone(nlp):
                docs = [nlp.make_doc(t) for t in new[p * NEW_DOCS + b : p * NEW_DOCS + b + BUFFER]]
            del docs
        per_pass.append(round(time.perf_counter() - t0, 3))
    return {
        "warmup_docs": warmup_docs,
        "warmup_chars": sum(len(t) for t in texts[:warmup_docs]),
        "warmup_s": round(warm_s, 2),
        "rss_mb_kept": round(kept, 1),
        "seconds_per_2048_new_docs": per_pass,
    }


def worker_run(warmup_chars: int, texts: list[str], logs: Path) -> dict[str, Any]:
    from bench.harness.worker import bench_settings, run_round
    from stream_trf.stream import clients
    from stream_trf.stream.broker import EmbeddedBroker
    from stream_trf.stream.local import WorkerProcess

    half = len(texts) // 2
    out: dict[str, Any] = {"vocab_warmup_chars": warmup_chars}
    with EmbeddedBroker(log_file=logs / "broker.log") as broker:
        settings = bench_settings(broker.url, "all-MiniLM-L6-v2", vocab_warmup_chars=warmup_chars)
        asyncio.run(clients.ensure_worker_topics(settings))
        worker = WorkerProcess(settings, logs / "worker.log")
        try:
            worker.wait_ready(timeout=600)
            for part, chunk in (("first_docs", texts[:half]), ("new_docs", texts[half:])):
                docs = [{"id": f"{part}-{i}", "text": t} for i, t in enumerate(chunk)]
                cpu0 = process_cpu(worker.pid)
                records, t0 = asyncio.run(run_round(settings, docs, None, timeout=3600))
                secs = max(r["_kafka"]["received_ms"] for r in records) / 1000 - t0
                out[part] = {
                    "docs": len(docs),
                    "enriched": len({r["id"] for r in records}),
                    "seconds": round(secs, 2),
                    "docs_per_s": round(len(docs) / secs, 2),
                    "worker_cpu": cpu_between(cpu0, process_cpu(worker.pid), len(docs)),
                }
        finally:
            worker.terminate()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("mode", choices=("tokenizer", "worker"))
    ap.add_argument("--warmup-docs", type=int, nargs="+", default=[0, 1000, 2000, 4000, 8000])
    ap.add_argument("--variants", type=int, nargs="+", default=[0, 1_000_000])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--docs", type=int, default=2000, help="docs per timed part (worker)")
    ap.add_argument("--data", type=Path, default=default_data_path())
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    runs: list[dict[str, Any]] = []
    if args.mode == "tokenizer":
        for n in args.warmup_docs:  # each in a fresh process: a warm tokenizer stays warm
            code = (
                "import json, sys; sys.path.insert(0, sys.argv[1]);"
                "from bench.experiments.zone_warmup import tokenizer;"
                "from pathlib import Path;"
                "print(json.dumps(tokenizer(int(sys.argv[2]), Path(sys.argv[3]))))"
            )
            res = subprocess.run(
                [sys.executable, "-c", code, str(SOURCE_ROOT), str(n), str(args.data)],
                check=True,
                capture_output=True,
                text=True,
            )
            run = json.loads(res.stdout.strip().splitlines()[-1])
            print(json.dumps(run), flush=True)
            runs.append(run)
    else:
        texts = read_texts(args.data, 2 * args.docs)
        with tempfile.TemporaryDirectory(prefix="stream-trf-warmup-") as tmp:
            for r in range(args.rounds):
                order = args.variants if r % 2 == 0 else list(reversed(args.variants))
                for v in order:
                    logs = Path(tmp) / f"{v}-{r}"
                    logs.mkdir()
                    run = {"round": r, **worker_run(v, texts, logs)}
                    print(json.dumps(run), flush=True)
                    runs.append(run)
    if args.out:
        result = {
            "benchmark": f"zone warm-up, {args.mode}",
            "command": " ".join(["python", "-m", "bench.experiments.zone_warmup", *sys.argv[1:]]),
            "machine": describe(),
            "runs": runs,
        }
        args.out.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
