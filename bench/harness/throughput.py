"""`stream-trf bench`: every system on the same texts in one run, written to JSON and a PNG.

Systems: the packed ceiling, the library (and a sweep of its sub-batch size), the worker end to
end through the embedded broker, a naive HF loop and spacy-transformers in its own venv. Each
in-process figure is measured in a fresh subprocess (its own peak RSS, no shared warm caches).
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .chart import chart
from .corpus import count_words, read_texts
from .machine import describe
from .measure import run_measurement
from .report import summarize, table

# What `stream-trf bench --systems` chooses from, in the order they run (the CLI's default lists
# them without importing this package: tests/bench/test_throughput.py checks they agree).
SYSTEMS = ("ceiling", "library", "worker", "host", "naive", "spacy-transformers")
# Documents the host-side system's worker and processor warm up on (others than the timed
# ones): past the worker's vocabulary warm-up (1,000,000 characters, ~2,200 descriptions).
HOST_WARMUP_DOCS = 3000
# Systems divided by the ceiling: it is measured again right after each of them.
RECHECKED = ("library", "worker")


def _recheck_ceiling(ceiling: dict[str, Any], texts_file: Path, model: str, after: str) -> None:
    """Run the ceiling's best shape again, right after ``after``. This machine's speed drifts
    by tens of percent over minutes (shared hosts), so each system is divided by the mean of
    the ceiling runs just before and just after it (report.summarize), not by one taken
    minutes away."""
    shape = ceiling["best_shape"]
    again = run_measurement(
        "ceiling",
        texts_file,
        model,
        {
            "engines": [shape["lanes"]],
            "graphs": [shape.get("graph", "eager")],
            "row_lengths": [shape["row_length"]],
            "tokens_per_batch": [shape["row_length"] * shape["rows_per_batch"]],
            "max_tokens": shape["row_length"] * shape["rows_per_batch"] * shape["lanes"],
        },
    )
    ceiling.setdefault(
        "runs", [{"after": "start", "wordpieces_per_s": ceiling["wordpieces_per_s"]}]
    ).append({"after": after, "wordpieces_per_s": again["wordpieces_per_s"]})


def default_result_name() -> str:
    import torch

    if torch.cuda.is_available():
        card = torch.cuda.get_device_name(0).lower().replace(" ", "-")
        return f"throughput-{card}"
    return "throughput-cpu"


def run_bench(
    data: Path,
    *,
    docs: int = 2000,
    model: str,
    systems: Sequence[str] = SYSTEMS,
    words_per_batch: int | None = None,
    sweep: Sequence[int] = (),
    precisions: Sequence[str] = (),
    naive_batch_size: int = 32,
    packing: str = "auto",
    paced_share: float = 0.5,
    paced_seconds: float = 60.0,
    soak_seconds: float = 0.0,
    worker_overrides: dict[str, Any] | None = None,
    out_dir: Path = Path("bench/results"),
    name: str | None = None,
    progress: bool = True,
    command: str = "",
) -> dict[str, Any]:
    from tqdm import tqdm

    from stream_trf.settings import Settings

    unknown = set(systems) - set(SYSTEMS)
    if unknown:
        raise ValueError(f"unknown systems {sorted(unknown)}; choose from {SYSTEMS}")
    texts = read_texts(data, docs)
    wpb = words_per_batch or Settings().words_per_batch
    if not wpb:  # auto: what the worker and library pick on this device
        import torch

        from stream_trf import auto

        wpb = auto.words_per_batch("cuda" if torch.cuda.is_available() else "cpu")
    t_start = time.time()
    result: dict[str, Any] = {
        "benchmark": "throughput",
        "command": command,
        "machine": describe(),
        "model": model,
        "data": str(data),
        "docs": len(texts),
        "packing": packing,
        "words": count_words(texts),
        "systems": {},
    }
    work_dir = Path(tempfile.mkdtemp(prefix="stream-trf-bench-"))
    texts_file = work_dir / "texts.jsonl"
    texts_file.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))
    steps = [s for s in SYSTEMS if s in systems]
    extra = [w for w in sweep if w != wpb] if "library" in systems else []
    out = result["systems"]
    total = len(steps) + len(extra) + len(precisions)
    stem = name or default_result_name()
    out_dir.mkdir(parents=True, exist_ok=True)
    partial = out_dir / f"{stem}.partial.json"

    def checkpoint() -> None:
        # A long run killed midway (a time limit on a lent GPU, say) keeps what it measured.
        partial.write_text(json.dumps(result, indent=2) + "\n")

    with tqdm(total=total, desc="bench", disable=not progress) as bar:
        for step in steps:
            bar.set_description(f"bench: {step}")
            if step == "ceiling":
                out["ceiling"] = run_measurement("ceiling", texts_file, model, {})
            elif step == "library":
                options = {"words_per_batch": wpb, "packing": packing}
                if "ceiling" in out:
                    # Also paired with the ceiling, chunk by chunk (bench/harness/library.py).
                    options["ceiling_shape"] = out["ceiling"]["best_shape"]
                out["library"] = run_measurement("library", texts_file, model, options)
            elif step == "naive":
                out["naive"] = run_measurement(
                    "naive", texts_file, model, {"batch_size": naive_batch_size}
                )
            elif step == "spacy-transformers":
                from stream_trf.model.source import resolve_model_dir

                from .peers import spacy_transformers_peer

                out["spacy-transformers"] = spacy_transformers_peer(
                    texts, resolve_model_dir(model), progress=progress
                )
            elif step == "host":
                from .host import run_host

                warmup = read_texts(data, len(texts) + HOST_WARMUP_DOCS)[len(texts) :]
                out["host"] = run_host(texts, warmup, log_dir=work_dir)
            elif step == "worker":
                from .worker import run_worker

                def recheck_before_soak() -> None:
                    # Right after the worker's saturation and paced runs, not after a soak of
                    # many minutes: the worker's ratio should see the host as it measured.
                    bar.set_description("bench: ceiling after worker")
                    _recheck_ceiling(out["ceiling"], texts_file, model, after="worker")
                    bar.set_description("bench: worker soak")

                soak_recheck = "ceiling" in out and soak_seconds > 0
                out["worker"] = run_worker(
                    texts,
                    model=model,
                    paced_share=paced_share,
                    paced_seconds=paced_seconds,
                    soak_seconds=soak_seconds,
                    overrides={
                        # the worker's own auto where none was asked for (stream_trf/stream/worker.py)
                        "words_per_batch": words_per_batch or Settings().words_per_batch,
                        "packing": packing,
                        **(worker_overrides or {}),
                    },
                    log_dir=work_dir,
                    before_soak=recheck_before_soak if soak_recheck else None,
                )
            bar.update(1)
            checkpoint()
            if step in RECHECKED and "ceiling" in out and not (step == "worker" and soak_recheck):
                bar.set_description(f"bench: ceiling after {step}")
                _recheck_ceiling(out["ceiling"], texts_file, model, after=step)
        points = []
        for w in extra:
            bar.set_description(f"bench: library sweep {w}")
            points.append(
                run_measurement(
                    "library", texts_file, model, {"words_per_batch": w, "packing": packing}
                )
            )
            result["sweep"] = points
            bar.update(1)
            checkpoint()
        for precision in precisions:
            bar.set_description(f"bench: fidelity of {precision}")
            result.setdefault("precisions", {})[precision] = run_measurement(
                "fidelity",
                texts_file,
                model,
                {"precision": precision, "words_per_batch": wpb, "packing": packing},
            )
            bar.update(1)
            checkpoint()
    if "library" in out and extra:
        points.append(out["library"])
        result["sweep"] = sorted(points, key=lambda p: p["words_per_batch"])
    result["seconds"] = round(time.time() - t_start, 1)
    summarize(result)
    result["chart"] = str(out_dir / f"{stem}.png")
    (out_dir / f"{stem}.json").write_text(json.dumps(result, indent=2) + "\n")
    chart(result, out_dir / f"{stem}.png")
    partial.unlink(missing_ok=True)
    if progress:
        print(table(result))
        print(f"wrote {out_dir / stem}.json and {out_dir / stem}.png")
    return result
