"""The wheel carries every file of the package, not only its Python: the dashboard's static
files, the record schemas, the samples and the shipped classifier are read at run time, and a
glob missing from ``[tool.setuptools.package-data]`` would only show on an installed worker."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_the_wheel_holds_every_file_of_the_package(tmp_path: Path) -> None:
    source = tmp_path / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(REPO / "stream_trf", source / "stream_trf", ignore=ignore)
    pip = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation"]
    subprocess.run([*pip, "-w", str(tmp_path / "dist"), str(source)], check=True)
    (wheel,) = (tmp_path / "dist").glob("stream_trf-*.whl")
    packed = set(zipfile.ZipFile(wheel).namelist())
    files = {
        p.relative_to(source).as_posix() for p in (source / "stream_trf").rglob("*") if p.is_file()
    }
    assert "stream_trf/monitor/static/dashboard.js" in files
    assert files - packed == set()
