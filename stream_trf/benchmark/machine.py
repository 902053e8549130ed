"""What a figure was measured on: the machine, the accelerator, the library versions."""

from __future__ import annotations

import os
import platform
import resource
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
        "cpus": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "spacy": spacy.__version__,
        "cuda": torch.version.cuda if cuda else None,
    }


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
