"""`stream-trf bench`'s systems: the CLI lists what the harness runs, and nothing else is run."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.harness.throughput import SYSTEMS, run_bench
from stream_trf.cli import BENCH_SYSTEMS, build_parser


def test_the_cli_offers_the_harness_systems_in_order() -> None:
    assert BENCH_SYSTEMS == SYSTEMS
    args = build_parser().parse_args(["bench"])
    assert args.systems == ",".join(SYSTEMS)


def test_an_unknown_system_is_refused_before_anything_runs(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown systems"):
        run_bench(tmp_path / "none.jsonl", model="x", systems=["ceiling", "gpu-magic"])
