"""`stream-trf package`: a trained pipeline becomes a wheel that spacy.load(NAME) finds offline."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from textcat_helpers import _examples, _pipeline, _train

from stream_trf.cli import main
from stream_trf.errors import StreamTrfError
from stream_trf.training.package import package


def test_package_installs_and_predicts_identically(tiny_models, tmp_path: Path, capsys) -> None:
    nlp = _pipeline(tiny_models["bert"])
    _train(nlp, _examples(nlp), 3)
    nlp.to_disk(tmp_path / "model")
    texts = ["The quick brown fox jumps.", "東京は日本の首都です。", ""]
    expected = [nlp(t).cats for t in texts]
    assert (
        main(
            [
                "package",
                str(tmp_path / "model"),
                str(tmp_path / "dist"),
                "--name",
                "en_tiny_test",
                "--version",
                "1.2.3",
            ]
        )
        == 0
    )
    wheel = tmp_path / "dist" / "en_tiny_test-1.2.3-py3-none-any.whl"
    assert wheel.exists(), capsys.readouterr().out
    target = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--target",
            str(target),
            str(wheel),
        ],
        check=True,
        capture_output=True,
    )
    script = (
        "import json, sys, spacy, stream_trf; texts = json.loads(sys.argv[1]); "
        "a = spacy.load('en_tiny_test'); b = stream_trf.load('en_tiny_test'); "
        "print(json.dumps([[a(t).cats for t in texts], [b(t).cats for t in texts], a.meta['version']]))"
    )
    env = dict(
        os.environ,
        PYTHONPATH=str(target),
        HF_HUB_OFFLINE="1",
        HTTPS_PROXY="http://127.0.0.1:9",
        HTTP_PROXY="http://127.0.0.1:9",
    )
    proc = subprocess.run(
        [sys.executable, "-c", script, json.dumps(texts)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    via_spacy, via_stream_trf, version = json.loads(proc.stdout.strip().splitlines()[-1])
    assert via_spacy == expected and via_stream_trf == expected
    assert version == "1.2.3"


def test_package_refuses_what_it_cannot_build(tiny_models, tmp_path: Path) -> None:
    with pytest.raises(StreamTrfError, match="not a saved pipeline"):
        package(tiny_models["bert"], tmp_path, name="en_x", version="1")
    nlp = _pipeline(tiny_models["bert"])
    nlp.get_pipe("trf_textcat").add_label("A")
    nlp.initialize()
    nlp.to_disk(tmp_path / "m")
    with pytest.raises(StreamTrfError, match="starting with the pipeline's language"):
        package(tmp_path / "m", tmp_path, name="tiny-test", version="1")
