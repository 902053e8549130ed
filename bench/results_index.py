"""The index of ``bench/results/``: what each file measured, its command, its date, who cites it.

    python -m bench.results_index           # rewrite bench/results/README.md
    python -m bench.results_index --check   # exit 1 if it is not current

What and when are written here, by hand, one entry per result (a JSON file and its chart
together); the command comes from the file itself where it recorded one; "cited by" is found by
searching the README, docs/, the CHANGELOG and the code for the file's name. A test checks that
every file in ``bench/results/`` has an entry and that the README.md is what this writes.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
INDEX = RESULTS / "README.md"
# Where a result is cited: the user documentation, the history and the code.
CITING: tuple[str, ...] = (
    "README.md",
    "CHANGELOG.md",
    "docs/**/*.md",
    "deploy/**/*.md",
    "stream_trf/**/*.py",
    "bench/**/*.py",
    "bench/**/*.sh",
    "tests/**/*.py",
)

# Scripts the results were made with, as they are run today (or that they are gone).
KEPT = (
    "buffer_working_set",
    "calibration_report",
    "finetune_step_ab",
    "gil_contention",
    "host_ab",
    "int8_schemes",
    "lag_burst",
    "library_kept_docs",
    "processor_alone",
    "record_size",
    "selection_honesty",
    "worker_paced_ab",
    "zone_tables",
    "zone_warmup",
)
REMOVED = ("allocator_ab", "lane_release_ab", "worker_processes", "throughput")
RENAMED = {"calibrate_shipped_head": "calibration_report"}


@dataclass(frozen=True)
class Entry:
    files: tuple[str, ...]
    what: str
    date: str  # when the figures were recorded (the file's last change)
    command: str | None = None  # when the file records none
    historical: bool = False  # superseded by a later run, kept for the record


def e(*files: str, what: str, date: str, command: str | None = None, old: bool = False) -> Entry:
    return Entry(files, what, date, command, old)


SECTIONS: tuple[tuple[str, str, tuple[Entry, ...]], ...] = (
    (
        "Throughput: `stream-trf bench`",
        "Every system on the same texts in one run: the packed ceiling, the library (and its "
        "`words_per_batch` sweep), the worker end to end (saturation, latency at half of it, "
        "optionally a memory soak), a naive HF loop, spacy-transformers; ratios against the "
        "ceiling measured just before and after each system.",
        (
            e(
                "throughput-cpu.json",
                "throughput-cpu.png",
                what="The current CPU figures: 2,000 Debian descriptions on the 2-core CPU, "
                "every system, int8 fidelity, a 20-minute memory soak",
                date="2026-11-28",
            ),
            e(
                "house-before-after-cpu.json",
                what="`stream-trf bench` (1,000 docs; ceiling, library, worker) before and after "
                "issue 28's restructure and on main after issues 29 and 31, two runs each, and "
                "a direct worker A/B: no regression",
                date="2026-12-02",
                command="stream-trf bench --docs 1000 --systems ceiling,library,worker --sweep '' "
                "--paced-seconds 20, each tree from its own environment",
            ),
            e(
                "throughput-cpu-processes-2.json",
                "throughput-cpu-processes-2.png",
                what="The CPU run before, when the worker's default was 2 single-threaded "
                "processes on this machine",
                date="2026-11-26",
                old=True,
            ),
            e(
                "library-recheck-cpu.json",
                "library-recheck-cpu.png",
                what="Ceiling and library alone, rerun to recheck the library's ratio to the "
                "ceiling (1.00 against the ceiling around it, 0.90 paired chunk by chunk)",
                date="2026-11-27",
                old=True,
            ),
            e(
                "throughput-nvidia-h200.json",
                "throughput-nvidia-h200.png",
                what="Lent NVIDIA H200: 2,000 docs, ceiling, library (sweep of 2k-33k), worker, "
                "naive loop, fp16/bf16 fidelity (superseded by the 4,000-doc run)",
                date="2026-11-26",
                old=True,
            ),
            e(
                "throughput-nvidia-h200-4000-docs.json",
                "throughput-nvidia-h200-4000-docs.png",
                what="Lent NVIDIA H200: 4,000 docs, ceiling, library and worker with the "
                "worker's GPU defaults (the weights carried as bf16, widened on the device)",
                date="2026-11-28",
            ),
            e(
                "throughput-nvidia-h200-padded.json",
                what="Lent NVIDIA H200: the library alone with padding-free inference off "
                "(`--packing off`), to compare with the packed run of the same day",
                date="2026-11-26",
                old=True,
            ),
            e(
                "throughput-nvidia-h100-80gb-hbm3.json",
                "throughput-nvidia-h100-80gb-hbm3.png",
                what="Lent NVIDIA H100: 4,000 docs, ceiling, library, worker, naive loop, "
                "fp16/bf16 fidelity",
                date="2026-11-26",
            ),
            e(
                "throughput-nvidia-h100-80gb-hbm3-worker-4-processes.json",
                "throughput-nvidia-h100-80gb-hbm3-worker-4-processes.png",
                what="Lent NVIDIA H100: the worker alone with 4 processes",
                date="2026-11-26",
            ),
            e(
                "throughput-nvidia-h100-80gb-hbm3-16000-docs.partial.json",
                "throughput-nvidia-h100-80gb-hbm3-16000-docs.partial.png",
                what="Lent NVIDIA H100: 16,000 docs; the call's time limit ended it during the "
                "fp16/bf16 fidelity runs (ceiling, library, sweep and worker complete)",
                date="2026-11-27",
            ),
            e(
                "throughput-nvidia-h100-80gb-hbm3-16000-docs-4x8000.json",
                "throughput-nvidia-h100-80gb-hbm3-16000-docs-4x8000.png",
                what="Lent NVIDIA H100: 16,000 docs with the worker's GPU defaults (4 processes "
                "x `words_per_batch` 8,000) and the bf16 check",
                date="2026-11-27",
            ),
        ),
    ),
    (
        "Memory soaks: `stream-trf bench --systems ceiling,worker --soak-minutes 20`",
        "The worker at 80 % of the rate it sustains over a backlog, for 20 minutes: resident "
        "memory over time and its growth. Successive runs, each after a change; the README's "
        "memory section tells the story.",
        (
            e(
                "soak-cpu.json",
                "soak-cpu.png",
                what="The first soak (RSS growth +21 %), before any of the memory work",
                date="2026-11-27",
                old=True,
            ),
            e(
                "soak-cpu-merged-batches.json",
                "soak-cpu-merged-batches.png",
                what="On the code with merged batches",
                date="2026-11-27",
                old=True,
            ),
            e(
                "soak-cpu-3.json",
                "soak-cpu-3.png",
                what="Merged batches and the harness's ceiling recheck",
                date="2026-11-27",
                old=True,
            ),
            e(
                "soak-cpu-5.json",
                "soak-cpu-5.png",
                what="Lanes writing rows into the batch's array",
                date="2026-11-27",
                old=True,
            ),
            e(
                "soak-cpu-7.json",
                "soak-cpu-7.png",
                what="The traced model, a second run of that code",
                date="2026-11-27",
                old=True,
            ),
            e(
                "soak-cpu-8.json",
                "soak-cpu-8.png",
                what="The worker skipping `doc.tensor`",
                date="2026-11-27",
                old=True,
            ),
            e(
                "soak-cpu-9.json",
                "soak-cpu-9.png",
                what="`words_per_batch` 500 on the CPU",
                date="2026-11-27",
                old=True,
            ),
            e(
                "soak-cpu-10.json",
                "soak-cpu-10.png",
                what="No wordpiece rows kept, freed heap handed back during each buffer: growth "
                "+1.4 % (met); the soak inside throughput-cpu.json followed it",
                date="2026-11-28",
            ),
            e(
                "soak-cpu-11.json",
                "soak-cpu-11.png",
                what="After issue 29's second round (freed heap kept up to 64 MiB, record "
                "batches, the agent's own intake): growth +1.1 % over 20 minutes at 43.7 docs/s "
                "(met); library 0.83 / worker 0.82 of the ceiling on this machine",
                date="2026-12-02",
            ),
            e(
                "soak-cpu-12.json",
                "soak-cpu-12.png",
                what="After issue 29's sixth round, on the family-26 EPYC: growth +2.1 % over 20 "
                "minutes at 49 docs/s, the worker behind (46.2 enriched a second, full buffers "
                "throughout) (met); worker 0.90 of the ceiling",
                date="2026-12-03",
            ),
        ),
    ),
    (
        "The worker at a fixed rate: `python -m bench.experiments.worker_paced_ab`",
        "One worker through the embedded broker at a fixed offered rate, two variants in "
        "alternating rounds: latency, buffer times, RSS growth and CPU per doc. The three A/Bs "
        "against an earlier commit (`--baseline`) ran from the repository root, as the "
        "script's usage said, where the worker's `python -m stream_trf` put this checkout ahead "
        "of the baseline's worktree on its path: the baseline's code almost certainly never "
        "ran, and their variants differ by no more than noise. The A/Bs of settings are not "
        "affected; the script now sets PYTHONSAFEPATH for the baseline.",
        (
            e(
                "worker-allocator-ab-cpu.json",
                what="The worker's allocator setup (4 MiB mmap threshold, torch huge pages) "
                "against glibc's defaults, at 100 docs/s",
                date="2026-11-27",
            ),
            e(
                "worker-release-every-ab-cpu.json",
                what="Freed heap handed back during a buffer (`--release-every`) against "
                "never, at 100 docs/s",
                date="2026-11-28",
            ),
            e(
                "worker-words-per-batch-ab-cpu.json",
                what="`words_per_batch` 500 against 1,000 on the CPU, at 100 docs/s",
                date="2026-11-27",
            ),
            e(
                "worker-paced-ab-cpu.json",
                what="Merged batches (c7eb286) against dda9c22 at 42 docs/s; the baseline's "
                "code most likely did not run (see above)",
                date="2026-11-27",
                command="python bench/worker_paced_ab.py --baseline dda9c22 --rate 42 "
                "(not recorded in the file)",
                old=True,
            ),
            e(
                "worker-paced-ab-cpu-38.json",
                what="The same at 38 docs/s, by the script's first copy; the baseline's code "
                "most likely did not run (see above)",
                date="2026-11-27",
                command="python bench/worker_paced_ab.py --baseline dda9c22 --rate 38 "
                "(not recorded in the file)",
                old=True,
            ),
            e(
                "worker-saturation-ab-cpu.json",
                what="Merged batches against dda9c22 at 100 docs/s (saturated); the "
                "baseline's code most likely did not run (see above)",
                date="2026-11-27",
                command="python bench/worker_paced_ab.py --baseline dda9c22 --rate 100 "
                "--seconds 30 --rounds 2 (from the README)",
                old=True,
            ),
            e(
                "worker-processes-ab-cpu.json",
                what="One worker process with a lane per core against one single-threaded "
                "process per core (saturation, latency at half load, RSS)",
                date="2026-11-26",
            ),
        ),
    ),
    (
        "The batch processor alone (no Kafka): memory and speed",
        "The worker's processor over 256-doc buffers in fresh processes, variants alternating "
        "(`python -m bench.experiments.processor_alone` and the memory scripts).",
        (
            e(
                "allocator-ab-cpu.json",
                what="Allocator setups: glibc's sliding mmap threshold, a pinned 4 MiB one, "
                "pinned with torch's huge pages (RSS per pass, speed)",
                date="2026-11-27",
            ),
            e(
                "allocator-ab-cpu-2.json",
                what="Two more setups: a 4 MiB pin without huge pages, a 2 MiB pin with them",
                date="2026-11-27",
            ),
            e(
                "buffer-working-set-cpu.json",
                what="Resident memory one buffer takes, by buffer size (16-256 docs), "
                "`words_per_batch` 1,000",
                date="2026-11-27",
            ),
            e(
                "buffer-working-set-500-cpu.json",
                what="The same with `words_per_batch` 500",
                date="2026-11-27",
                old=True,
            ),
            e(
                "buffer-working-set-pooled-release-cpu.json",
                what="The same with pooled outputs and freed heap handed back every 4,000 "
                "wordpieces (the worker's defaults since)",
                date="2026-11-28",
            ),
            e(
                "lane-release-ab-cpu.json",
                what="Freed heap handed back during a buffer (after every sub-batch, every "
                "4,000 or 16,000 wordpieces, never): the RSS step between 16- and 256-doc "
                "buffers, and speed",
                date="2026-11-27",
            ),
            e(
                "onednn-cache-ab-cpu.json",
                what="oneDNN's kernel cache (default 1,024, none, 256): speed, and memory "
                "growth over passes of new docs",
                date="2026-11-27",
                command="python bench/processor_alone.py 4 1 1 8 under "
                "ONEDNN_PRIMITIVE_CACHE_CAPACITY=default/0/256, and --new-docs-passes N "
                "(inside the file)",
            ),
            e(
                "processor-rows-into-batch-ab-cpu.json",
                what="Lanes writing one-window sentences' rows into the batch's array, against "
                "the commit before (peak memory, speed)",
                date="2026-11-27",
            ),
            e(
                "trace-ab-cpu.json",
                what="The eager model against its TorchScript trace",
                date="2026-11-27",
            ),
            e(
                "wordpieces-rust-ab-cpu.json",
                what="Wordpieces through the Rust tokenizer directly against transformers' call",
                date="2026-11-27",
            ),
            e(
                "gil-contention-cpu.json",
                what="The model lanes and the tokenizer beside them: shared cores or turns at "
                "the GIL, eager and traced",
                date="2026-11-27",
            ),
        ),
    ),
    (
        "spaCy's memory zones",
        "",
        (
            e(
                "zone-tables-cpu.json",
                what="The vocab's hash tables over millions of new words, with spaCy's zone "
                "alone and with `buffer_zone`",
                date="2026-11-27",
            ),
            e(
                "zone-warmup-tokenizer-cpu.json",
                what="The tokenizer's cost inside zones, by the size of a vocabulary warm-up "
                "outside any",
                date="2026-11-28",
            ),
            e(
                "zone-warmup-worker-cpu.json",
                what="The worker end to end with and without the vocabulary warm-up (CPU)",
                date="2026-11-28",
            ),
            e(
                "zone-warmup-worker-nvidia-h200.json",
                what="The same on a lent NVIDIA H200 (`bash bench/device/run.sh`)",
                date="2026-11-28",
            ),
        ),
    ),
    (
        "Precision, records, lag",
        "",
        (
            e(
                "int8-fidelity-cpu.json",
                what="int8 schemes against fp32 (doc-vector cosine, label agreement, speed): "
                "none passes the fidelity gate",
                date="2026-11-28",
            ),
            e(
                "record-size.json",
                what="Enriched record size per token in each `--vector-encoding` (no timing)",
                date="2026-12-02",
            ),
            e(
                "host-ab-cpu.json",
                what="Host-side cost on a near-zero-compute model (floor, processor, worker; "
                "CPU-ms per doc and ratios to the floor): after issue 29's changes against "
                "before, 2 rounds alternating",
                date="2026-12-02",
            ),
            e(
                "host-ab-cpu-2.json",
                what="Host-side cost, second round of issue 29 (alignment on first use, record "
                "batches per partition, the agent's own intake, freed heap kept): against "
                "c00e9d3, 3 rounds alternating, ratios with and without the model's forward",
                date="2026-12-02",
            ),
            e(
                "host-ab-cpu-3.json",
                what="Host-side cost, third round of issue 29 (no offsets without an alignment, "
                "freed heap asked once a buffer, records enriched per buffer, user_data "
                "accessors): against 68494a7, 4 rounds alternating",
                date="2026-12-02",
            ),
            e(
                "host-ab-cpu-4.json",
                what="Host-side cost: faust's fetch loop handing each record over without "
                "four tasks (stream/handoff.py) against 253dace, 3 rounds alternating",
                date="2026-12-03",
            ),
            e(
                "host-ab-cpu-5.json",
                what="Host-side cost, fourth round of issue 29 (encoder without offsets, the "
                "direct hand-off, docs keeping their text): against 9191cb3, 5 rounds alternating",
                date="2026-12-03",
            ),
            e(
                "throughput-cpu-r4.json",
                "throughput-cpu-r4.png",
                what="Ceiling, library, worker and the host system after issue 29's fourth "
                "round (2,000 docs, no sweep, no peers): the CPU targets re-measured",
                date="2026-12-03",
            ),
            e(
                "encoder-ab-cpu.json",
                what="The batch processor on the near-zero model with the Rust encoder that "
                "skips offsets against the one that computes them, alternating in one process",
                date="2026-12-03",
            ),
            e(
                "kept-text-ab-cpu.json",
                what="The batch processor on the near-zero model with its docs keeping their "
                "text (read by the wordpiecer) against the text rebuilt per token, alternating "
                "in one process",
                date="2026-12-03",
            ),
            e(
                "host-ab-cpu-6.json",
                what="Host-side cost, fifth round of issue 29 (fetched batches handed to the "
                "agent's intake whole, the trace's mask and pooling, sub-batch cuts in a loop): "
                "against 65a33a4, 6 rounds alternating",
                date="2026-12-03",
            ),
            e(
                "throughput-cpu-r5.json",
                "throughput-cpu-r5.png",
                what="Ceiling, library, worker and the host system after issue 29's fifth round "
                "(2,000 docs, no sweep, no peers): the CPU targets re-measured",
                date="2026-12-03",
            ),
            e(
                "trace-graph-ab-cpu.json",
                what="The batch processor on the near-zero model with the trace taking the fused "
                "kernel's mask and reducing pooled rows, against the 2-D mask and pooling in "
                "Python, switched every buffer in one process",
                date="2026-12-03",
            ),
            e(
                "sub-batches-1000-ab-cpu.json",
                what="The batch processor on the near-zero model with sub-batches of up to "
                "1,000 padded wordpieces against the worker's 500, switched every buffer",
                date="2026-12-03",
            ),
            e(
                "host-ab-cpu-7.json",
                what="Host-side cost, sixth round of issue 29, first step (a batch's long "
                "sentences through windows alone, the rest on the arrays): against b46e0cf, 4 "
                "rounds alternating",
                date="2026-12-03",
            ),
            e(
                "host-ab-cpu-8.json",
                what="Host-side cost, sixth round of issue 29 (long sentences alone, the "
                "record's token figures from the wordpiecer, cuts by a monotone queue): against "
                "b46e0cf, 6 rounds alternating",
                date="2026-12-03",
            ),
            e(
                "library-kept-docs-ab-cpu.json",
                what="The library's nlp.pipe with every doc kept alive or consumed as a stream, "
                "with and without doc.tensor, chunks alternating in one process",
                date="2026-12-03",
            ),
            e(
                "throughput-cpu-r6.json",
                "throughput-cpu-r6.png",
                what="Ceiling, library (now consumed as a stream), worker and the host system "
                "(2,000 docs, no sweep, no peers): the CPU targets re-measured",
                date="2026-12-03",
            ),
            e(
                "throughput-cpu-r7.json",
                "throughput-cpu-r7.png",
                what="Ceiling, library, worker and the host system after issue 29's sixth round, "
                "on another machine of the kind (AMD EPYC family 26 model 2; 2,000 docs, no "
                "sweep, no peers): the CPU targets re-measured",
                date="2026-12-03",
            ),
            e(
                "host-ab-cpu-9.json",
                what="Host-side cost, seventh round of issue 29 (words_per_batch auto scaled by "
                "the model's width, glibc's heap asked only after growth): this checkout's "
                "worker beside b05fca5's on the same slices, an honest floor, 2 runs",
                date="2026-12-03",
            ),
            e(
                "host-ab-cpu-10.json",
                what="The same comparison as host-ab-cpu-9, 4 runs, forty minutes later with "
                "the host ~40 % faster",
                date="2026-12-03",
            ),
            e(
                "host-ab-cpu-11.json",
                what="Host-side cost, eighth round of issue 29 (libc loaded once, the collector "
                "off a buffer's objects, per-batch sentence lengths, numpy-built windows of the "
                "sub-batch cuts) beside c71fd17's worker on the same slices, 6 runs, with a "
                "bootstrap interval over rounds and slices",
                date="2026-12-03",
            ),
            e(
                "host-ab-cpu-12.json",
                what="Host-side cost: the worker's batch_cost scaled by the model's width (384 "
                "for the near-zero model) beside b7a968c's worker, 6 runs: not told apart in "
                "total, the lanes' CPU lower in every run",
                date="2026-12-03",
            ),
            e(
                "host-ab-cpu-13.json",
                what="Host-side cost, ninth round of issue 29: lean lexemes in the worker's "
                "memory zones beside f5164e6's worker on the same slices (the floor lean too), "
                "6 runs",
                date="2026-12-03",
            ),
            e(
                "host-ab-cpu-14.json",
                what="The same comparison as host-ab-cpu-13, with the floor as spaCy ships "
                "timed beside the lean floor, 6 runs",
                date="2026-12-03",
            ),
            e(
                "lean-lexemes-ab-cpu.json",
                what="spaCy's tokenizer and sentencizer in the worker's zones with a zone's new "
                "lexemes lean or with every lexical attribute, alternating in one process",
                date="2026-12-03",
            ),
            e(
                "throughput-cpu-r8.json",
                "throughput-cpu-r8.png",
                what="Ceiling, library, worker (with a 20-minute memory soak) and the host "
                "system, now slice by slice on an honest floor, after issue 29's seventh round "
                "(2,000 docs, no sweep, no peers)",
                date="2026-12-03",
            ),
            e(
                "throughput-cpu-r9.json",
                "throughput-cpu-r9.png",
                what="Ceiling, library, worker and the host system after issue 29's ninth round "
                "(lean lexemes; the host floor lean, the floor as spaCy ships beside it), 2,000 "
                "docs, no sweep, no soak",
                date="2026-12-03",
            ),
            e(
                "host-cpu-6144.json",
                "host-cpu-6144.png",
                "host-cpu-6144-1.json",
                "host-cpu-6144-1.png",
                "host-cpu-6144-2.json",
                "host-cpu-6144-2.png",
                what="The host system alone on 6,144 docs in 12 slices of 512, three runs one "
                "after the other, after issue 29's ninth round",
                date="2026-12-03",
            ),
            e(
                "host-rotation-cpu.json",
                what="The host system with one worker in its rotation against two of the same "
                "code, 4 runs of each, interleaved",
                date="2026-12-03",
            ),
            e(
                "lag-burst-cpu.json",
                what="Consumer lag after a 3,000-doc burst: its peak and the time one worker "
                "takes to catch up (machine shared: indicative)",
                date="2026-12-02",
            ),
        ),
    ),
    (
        "Drift detection: `python -m bench.drift`",
        "The monitor replayed on labelled Debian descriptions enriched by the real worker: "
        "false alarms on stationary streams, detection delays after switches and corrupted "
        "production labels, and a live check on a worker's /metrics.",
        (
            e(
                "drift-detection.json",
                "drift-detection.png",
                what="The default thresholds: every scenario, 10 seeds, and the live check",
                date="2026-11-26",
            ),
            e(
                "drift-detection-whatif-agreement-max-drop-0.05.json",
                what="What-if: `agreement_max_drop` 0.05 (how the default was chosen)",
                date="2026-11-26",
                old=True,
            ),
            e(
                "drift-detection-whatif-mmd-max-per-side-500.json",
                what="What-if: 500 vectors per side in the MMD test (how the default was chosen)",
                date="2026-11-26",
                old=True,
            ),
            e(
                "drift-detection-whatif-window-500-docs.json",
                what="What-if: windows of 500 documents",
                date="2026-11-26",
                old=True,
            ),
        ),
    ),
    (
        "Text classification: `stream-trf train`",
        "",
        (
            e(
                "textcat-head-debian-sections.json",
                what="The shipped Debian-sections head: a head over the frozen model, 40 "
                "epochs, its training log and dev scores",
                date="2026-11-25",
            ),
            e(
                "finetune-debian-sections.json",
                what="Fine-tuning runs on the CPU against the targets, each run's log, and the "
                "GPU sweep's summary",
                date="2026-11-26",
                command="stream-trf train runs (each run's arguments inside the file)",
            ),
            e(
                "finetune-sweep-nvidia-h200.json",
                what="Lent NVIDIA H200: learning rate 5e-5 / 1e-4 x first 128 / 256 "
                "wordpieces x seeds 0-2, each run's log",
                date="2026-11-26",
                command="stream-trf train on CUDA, 12 runs (each run's arguments inside the file)",
            ),
            e(
                "calibration-shipped-head.json",
                what="Calibration of the shipped head: ECE on dev before and after its "
                "temperature, cross-fitted on halves of dev, with the noise floor of ECE at "
                "that size",
                date="2026-12-02",
            ),
            e(
                "calibration-finetuned-cpu.json",
                what="The same for the model `stream-trf train` fine-tuned with its defaults",
                date="2026-12-02",
            ),
            e(
                "selection-honesty-frozen-head.json",
                what="Selection honesty: a head over the frozen model, 5 seeds, the epoch "
                "chosen on a held-out tenth of train, scored on dev (used for neither)",
                date="2026-12-02",
            ),
            e(
                "selection-honesty-finetuned-cpu.json",
                what="Selection honesty, fine-tuned: `stream-trf train` defaults on nine tenths "
                "of train, epoch and temperature chosen on the other tenth, scored on dev",
                date="2026-12-02",
            ),
            e(
                "finetune-step-ab-cpu.json",
                what="A fine-tuning step through spaCy's optimizer against the own-AdamW step "
                "before (seconds per step, same batches)",
                date="2026-12-02",
            ),
        ),
    ),
    (
        "The dashboard",
        "",
        (
            e(
                "dashboard.png",
                what="A screenshot of the worker's dashboard, taken by the browser test",
                date="2026-11-26",
                command="STREAM_TRF_DASHBOARD_PNG=bench/results/dashboard.png python -m pytest "
                "tests/monitor/test_dashboard_browser.py",
            ),
        ),
    ),
)


def entries() -> list[Entry]:
    return [entry for _, _, group in SECTIONS for entry in group]


def recorded_command(entry: Entry) -> str:
    """The command the result file recorded (or the entry's), with the script's name today."""
    command = entry.command
    if command is None:
        for name in entry.files:
            if name.endswith(".json"):
                data = json.loads((RESULTS / name).read_text(encoding="utf-8"))
                if isinstance(data, dict) and data.get("command"):
                    command = str(data["command"])
                    break
    if command is None:
        return ""
    command = " ".join(command.split())
    notes = []
    for script in dict.fromkeys(re.findall(r"bench/(\w+)\.py", command)):
        if script in KEPT or script in RENAMED:
            notes.append(f"today `python -m bench.experiments.{RENAMED.get(script, script)}`")
        elif script == "drift_detection":
            notes.append("today `python -m bench.drift`")
        elif script in REMOVED:
            notes.append(f"`bench/{script}.py` since removed")
    return code(command) + (f" ({'; '.join(notes)})" if notes else "")


def code(text: str) -> str:
    """``text`` as a Markdown code span inside a table cell."""
    text = text.replace("|", "\\|")
    return f"`` {text} ``" if "`" in text else f"`{text}`"


def citing_files() -> list[Path]:
    found: set[Path] = set()
    for pattern in CITING:
        found.update(p for p in ROOT.glob(pattern) if p.is_file())
    skip = {Path(__file__).resolve(), INDEX.resolve()}
    return sorted(
        p
        for p in found
        if p.resolve() not in skip and "results" not in p.relative_to(ROOT).parts[:2]
    )


def citations() -> dict[str, list[str]]:
    """Result file name → the files that cite it by name, or by a pattern such as
    ``bench/results/soak-cpu-*.json`` or ``soak-cpu-10.{json,png}``."""
    names = sorted(p.name for p in RESULTS.iterdir() if p.name != INDEX.name)
    cited: dict[str, list[str]] = {n: [] for n in names}
    for path in citing_files():
        text = path.read_text(encoding="utf-8", errors="replace")
        rel = path.relative_to(ROOT).as_posix()
        patterns = set()
        for raw in re.findall(r"bench/results/([\w.*{},-]+)", text):
            patterns.update(_braces(raw.rstrip(".,")))
        # "…-worker-4-processes.json": a name shortened after a full one nearby
        patterns.update("*" + tail for tail in re.findall(r"…(-[\w.-]+\.(?:json|png))", text))
        globs = [p for p in patterns if "*" in p]
        for name in names:
            if name in text or name in patterns or any(fnmatch.fnmatchcase(name, g) for g in globs):
                cited[name].append(rel)
    return cited


def _braces(pattern: str) -> list[str]:
    """``a.{json,png}`` → ``a.json``, ``a.png``."""
    m = re.search(r"\{([^{}]*)\}", pattern)
    if not m:
        return [pattern]
    return [
        out
        for option in m.group(1).split(",")
        for out in _braces(pattern[: m.start()] + option + pattern[m.end() :])
    ]


def render() -> str:
    cited = citations()
    lines = [
        "# Benchmark results",
        "",
        "Every figure the project has recorded, with the machine it ran on inside each JSON "
        "file (`machine`). Compare ratios measured within one run, not absolute figures across "
        "runs: machines differ by up to 2x, and this 2-core host drifts by tens of percent over "
        "minutes. *Historical* entries were superseded by a later run (or cited by nothing any "
        "more) and are kept for the record.",
        "",
        "Written by `python -m bench.results_index` from its entries (what, date) and the files "
        "themselves (command) and the repository (cited by); "
        "`tests/bench/test_results_index.py` fails when a file here has no entry or this page "
        "is not current.",
    ]
    for title, intro, group in SECTIONS:
        lines += ["", f"## {title}", ""]
        if intro:
            lines += [intro, ""]
        lines += ["| file | what | date | command | cited by |", "|---|---|---|---|---|"]
        for entry in group:
            files = ", ".join(f"[`{n}`]({n})" for n in entry.files)
            by = sorted({c for n in entry.files for c in cited.get(n, [])})
            what = entry.what + (" *(historical)*" if entry.historical else "")
            by_text = ", ".join(by) if by else "nothing"
            lines.append(
                f"| {files} | {what} | {entry.date} | {recorded_command(entry)} | {by_text} |"
            )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.results_index", description=__doc__)
    ap.add_argument("--check", action="store_true", help="exit 1 if the index is not current")
    args = ap.parse_args(argv)
    listed = [n for entry in entries() for n in entry.files]
    present = sorted(p.name for p in RESULTS.iterdir() if p.name != INDEX.name)
    missing = sorted(set(present) - set(listed))
    if missing:
        print(f"no entry in bench/results_index.py for: {', '.join(missing)}", file=sys.stderr)
        return 1
    text = render()
    if args.check:
        if INDEX.read_text(encoding="utf-8") != text:
            print("bench/results/README.md is not current: python -m bench.results_index")
            return 1
        return 0
    INDEX.write_text(text, encoding="utf-8")
    print(f"wrote {INDEX.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
