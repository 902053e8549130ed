"""What a figure was measured on: the machine, the accelerator, the library versions, the code."""

from __future__ import annotations

import os
import platform
import resource
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def describe() -> dict[str, Any]:
    import spacy
    import torch
    import transformers

    cuda = torch.cuda.is_available()
    cpu_model = platform.processor() or platform.machine()
    for line in _lines("/proc/cpuinfo"):
        if line.startswith("model name"):
            cpu_model = line.split(":", 1)[1].strip()
            break
    return {
        "device": torch.cuda.get_device_name(0) if cuda else f"CPU: {cpu_model}",
        "cpu": cpu_model,
        "cpu_generation": cpu_generation(),
        "cpus": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "spacy": spacy.__version__,
        "cuda": torch.version.cuda if cuda else None,
    }


def cpu_generation(cpuinfo: str = "/proc/cpuinfo") -> str | None:
    """The CPU's vendor, family, model and stepping (``AuthenticAMD family 26 model 2
    stepping 1``): virtual machines often name only "AMD EPYC", which spans generations whose
    speeds differ by tens of percent. None where /proc/cpuinfo does not say."""
    fields: dict[str, str] = {}
    for line in _lines(cpuinfo):
        if not line.strip():
            break  # the first processor's block is enough
        key, _, value = line.partition(":")
        fields[key.strip()] = value.strip()
    parts = [fields.get("vendor_id")] + [
        f"{name} {fields[key]}"
        for name, key in (("family", "cpu family"), ("model", "model"), ("stepping", "stepping"))
        if key in fields
    ]
    known = [p for p in parts if p]
    return " ".join(known) if known else None


def source_revision(checkout: Path | None = None) -> str:
    """The checkout's commit (short hash), with ``+uncommitted changes`` when tracked files
    differ from it; ``unknown`` outside a git checkout. Default: this source checkout."""
    git = ["git", "-C", str(checkout or Path(__file__).resolve().parents[2])]
    try:
        head = subprocess.run(
            [*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True
        )
        dirty = subprocess.run(
            [*git, "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True
        )
    except OSError:
        return "unknown"
    if head.returncode != 0:
        return "unknown"
    return head.stdout.strip() + ("+uncommitted changes" if dirty.stdout.strip() else "")


@contextmanager
def worktree(revision: str, path: Path) -> Iterator[Path]:
    """A detached git worktree of this source checkout at ``revision``, removed afterwards: the
    code an A/B compares against."""
    repo = str(Path(__file__).resolve().parents[2])
    subprocess.run(
        ["git", "-C", repo, "worktree", "add", "-q", "--detach", str(path), revision], check=True
    )
    try:
        yield path
    finally:
        subprocess.run(["git", "-C", repo, "worktree", "remove", "--force", str(path)], check=False)


def peak_rss_mb() -> float:
    """This process's peak resident memory."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def _lines(path: str) -> list[str]:
    try:
        with open(path, encoding="utf-8") as f:
            return f.readlines()
    except OSError:
        return []


def _status_mb(pid: int, field: str) -> float | None:
    for line in _lines(f"/proc/{pid}/status"):
        if line.startswith(field + ":"):
            return round(int(line.split()[1]) / 1024, 1)
    return None


def process_tree(pid: int) -> list[int]:
    """``pid`` and every live descendant (a supervised worker's processes), from ``/proc``."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc") if os.path.isdir("/proc") else []:
        if not entry.isdigit():
            continue
        stat = _lines(f"/proc/{entry}/stat")
        if not stat:
            continue
        # "pid (comm) state ppid ...": comm may hold spaces, so split after its ")"
        fields = stat[0].rsplit(")", 1)[-1].split()
        if len(fields) > 1:
            children.setdefault(int(fields[1]), []).append(int(entry))
    tree, todo = [], [pid]
    while todo:
        p = todo.pop()
        tree.append(p)
        todo.extend(children.get(p, []))
    return tree


def _tree_mb(pid: int, field: str) -> float | None:
    values = [v for p in process_tree(pid) if (v := _status_mb(p, field)) is not None]
    return round(sum(values), 1) if values else None


def process_peak_rss_mb(pid: int) -> float | None:
    """Another live process's peak resident memory (Linux ``VmHWM``), None where unknown;
    summed over its descendants (each one's own peak: an upper bound of the peak together)."""
    return _tree_mb(pid, "VmHWM")


def process_rss_mb(pid: int) -> float | None:
    """Another live process's resident memory now (Linux ``VmRSS``) with its descendants',
    None where unknown."""
    return _tree_mb(pid, "VmRSS")


def process_cpu(pid: int) -> dict[str, float] | None:
    """CPU a live process and its descendants have used so far (Linux ``/proc/PID/stat``): user
    and kernel seconds and minor page faults, None where unknown. Kernel time is mostly page
    faults here: the share that shows what the allocator costs (stream_trf/stream/memory.py)."""
    tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    total = {"user_s": 0.0, "kernel_s": 0.0, "minor_faults": 0.0}
    found = False
    for p in process_tree(pid):
        stat = _lines(f"/proc/{p}/stat")
        if not stat:
            continue
        fields = stat[0].rsplit(")", 1)[-1].split()
        # after "(comm)": state ppid pgrp session tty tpgid flags minflt cminflt majflt
        # cmajflt utime stime ...
        total["minor_faults"] += int(fields[7])
        total["user_s"] += int(fields[11]) / tick
        total["kernel_s"] += int(fields[12]) / tick
        found = True
    return total if found else None


def thread_cpu(pid: int) -> dict[tuple[int, int], tuple[str, float]]:
    """Every live thread of ``pid`` and its descendants: ``(process, thread) → (role, CPU
    seconds so far)``. The role is the thread's OS name without its number (the worker names
    its threads: ``trf-lane``, ``trf-model``, ``trf-prefetch``, ``trf-monitor``;
    stream_trf/threads.py), ``event loop`` for a process's main thread, ``other`` for unnamed
    ones (aiokafka's, executors')."""
    tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    out: dict[tuple[int, int], tuple[str, float]] = {}
    for p in process_tree(pid):
        try:
            tids = os.listdir(f"/proc/{p}/task")
        except OSError:
            continue
        for entry in tids:
            stat = _lines(f"/proc/{p}/task/{entry}/stat")
            comm = _lines(f"/proc/{p}/task/{entry}/comm")
            if not stat or not comm:
                continue
            fields = stat[0].rsplit(")", 1)[-1].split()
            name = comm[0].strip()
            if int(entry) == p:
                role = "event loop"
            elif name.startswith("trf-"):
                role = name.rstrip("0123456789").rstrip("_")
            else:
                role = "other"
            out[(p, int(entry))] = (role, (int(fields[11]) + int(fields[12])) / tick)
    return out


def threads_between(
    before: dict[tuple[int, int], tuple[str, float]],
    after: dict[tuple[int, int], tuple[str, float]],
    total_s: float,
    docs: int,
) -> dict[str, float]:
    """CPU-ms per document by thread role between two ``thread_cpu`` readings; what threads
    that ended in between used (the prefetch thread ends with every buffer) is the process's
    ``total_s`` less the live threads', as ``ended threads``."""
    by_role: dict[str, float] = {}
    for key, (role, seconds) in after.items():
        spent = seconds - before.get(key, (role, 0.0))[1]
        by_role[role] = by_role.get(role, 0.0) + spent
    by_role["ended threads"] = max(0.0, total_s - sum(by_role.values()))
    return {k: round(1000 * v / max(docs, 1), 4) for k, v in sorted(by_role.items())}


def cpu_between(
    before: dict[str, float] | None, after: dict[str, float] | None, docs: int
) -> dict[str, float] | None:
    """What ``process_cpu`` counted between two readings, per doc where it helps."""
    if before is None or after is None:
        return None
    user = after["user_s"] - before["user_s"]
    kernel = after["kernel_s"] - before["kernel_s"]
    return {
        "user_s": round(user, 2),
        "kernel_s": round(kernel, 2),
        "kernel_share": round(kernel / (user + kernel), 4) if user + kernel > 0 else 0.0,
        "cpu_ms_per_doc": round(1000 * (user + kernel) / max(docs, 1), 2),
        "minor_faults_per_doc": round(
            (after["minor_faults"] - before["minor_faults"]) / max(docs, 1), 1
        ),
    }
