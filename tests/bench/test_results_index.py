"""bench/results/README.md lists every result file, says who cites each, and is current."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from bench import results_index
from bench.results_index import INDEX, RESULTS, citations, entries, render


def test_every_result_file_has_one_entry_and_every_entry_a_file() -> None:
    listed = Counter(name for entry in entries() for name in entry.files)
    assert [name for name, n in listed.items() if n > 1] == []
    present = {p.name for p in RESULTS.iterdir() if p.name != INDEX.name}
    assert present - set(listed) == set(), "add an entry to bench/results_index.py"
    assert set(listed) - present == set(), "an entry names a file bench/results/ lacks"
    for entry in entries():
        assert entry.what and entry.date[:2] == "20" and len(entry.date) == 10, entry


def test_a_result_nothing_cites_is_marked_historical() -> None:
    cited = citations()
    for entry in entries():
        if not any(cited[name] for name in entry.files):
            assert entry.historical, f"{entry.files} is cited nowhere: cite it or mark it old"


def test_the_index_is_current() -> None:
    assert INDEX.read_text(encoding="utf-8") == render(), (
        "bench/results/README.md is stale: run python -m bench.results_index"
    )
    assert results_index.main(["--check"]) == 0


def test_citations_by_name_pattern_and_braces(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    results = tmp_path / "bench" / "results"
    results.mkdir(parents=True)
    for name in ("a-cpu.json", "a-cpu-2.json", "b.json", "b.png", "c.json", "d-x-4.json"):
        (results / name).write_text("{}")
    (tmp_path / "README.md").write_text(
        "see bench/results/a-cpu*.json and bench/results/b.{json,png}; d-x-3.json, …-x-4.json"
    )
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "x.md").write_text("`bench/results/a-cpu.json`")
    (results / "README.md").write_text("c.json")  # the index itself cites nothing
    monkeypatch.setattr(results_index, "ROOT", tmp_path)
    monkeypatch.setattr(results_index, "RESULTS", results)
    monkeypatch.setattr(results_index, "INDEX", results / "README.md")
    cited = citations()
    assert cited == {
        "a-cpu.json": ["README.md", "docs/x.md"],
        "a-cpu-2.json": ["README.md"],
        "b.json": ["README.md"],
        "b.png": ["README.md"],
        "c.json": [],
        "d-x-4.json": ["README.md"],
    }
