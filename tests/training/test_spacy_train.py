"""spaCy's own path, as a spaCy user runs it: ``stream-trf convert`` and ``stream-trf
init-config``, then ``python -m spacy train`` (a fresh process: everything found through entry
points), ``spacy.load``, spaCy's evaluate, ``stream-trf calibrate`` and spaCy's package (the
directory form, offline; installed by pip)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import spacy
from safetensors.numpy import load_file
from textcat_helpers import NEG5, POS5
from thinc.api import Config

from stream_trf.cli import main


def _env() -> dict[str, str]:
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    env.update(HTTPS_PROXY="http://127.0.0.1:9", HTTP_PROXY="http://127.0.0.1:9")
    return env


def _run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, env=_env(), cwd=cwd, timeout=600
    )
    assert proc.returncode == 0, (proc.stdout[-2000:], proc.stderr[-3000:])
    return proc


@pytest.fixture(scope="module")
def trained(tiny_models, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("spacy-train")
    rows = [{"text": t, "label": "pos"} for t in POS5] + [{"text": t, "label": "neg"} for t in NEG5]
    jsonl = root / "data.jsonl"
    jsonl.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n")
    assert main(["convert", str(jsonl), str(root / "train.spacy")]) == 0
    assert main(["convert", str(jsonl), str(root / "dev.spacy")]) == 0
    config = root / "config.cfg"
    args = ["init-config", str(config), "--model", str(tiny_models["bert"])]
    args += ["--train", str(root / "train.spacy"), "--epochs", "6", "--batch-size", "4"]
    args += ["--probe-epochs", "5", "--learn-rate", "1e-3", "--warmup", "0"]
    args += ["--max-wordpieces", "8"]
    assert main(args) == 0
    _run(
        "-m", "spacy", "train", str(config),
        "--paths.train", str(root / "train.spacy"),
        "--paths.dev", str(root / "dev.spacy"),
        "--output", str(root / "out"),
    )  # fmt: skip
    return {"root": root, "config": config, "best": root / "out" / "model-best"}


def test_the_config_holds_every_setting_of_stream_trf_train(trained) -> None:
    config = Config().from_disk(trained["config"], interpolate=False)
    t2v, tc = config["components"]["trf_tok2vec"], config["components"]["trf_textcat"]
    assert tc["model"]["@architectures"] == "stream_trf.TransformerTextcatHead.v1"
    assert tc["optimizer"]["learn_rate"] == 1e-3  # the head's own rate
    assert t2v["grad_factor"] == 1.0 and t2v["words_per_batch"] == 1000
    assert (tc["max_wordpieces"], tc["class_weighting"], tc["pooling"]) == (8, "sqrt", "doc_mean")
    assert (
        config["corpora"]["train"]["augmenter"]["@augmenters"] == "stream_trf.first_wordpieces.v1"
    )
    schedule = config["training"]["optimizer"]["learn_rate"]
    # 10 docs / batches of 4 = 3 steps an epoch, 6 epochs, and the last evaluation's batch
    assert (schedule["@schedules"], schedule["total_steps"]) == ("warmup_linear.v1", 19)
    assert config["training"]["optimizer"]["L2"] == 0.01
    assert config["initialize"]["components"]["trf_textcat"]["labels"] == ["neg", "pos"]
    assert config["initialize"]["components"]["trf_textcat"]["probe_epochs"] == 5


def test_spacy_train_fine_tunes_and_spacy_load_runs_it(trained, tiny_models) -> None:
    nlp = spacy.load(trained["best"])
    assert nlp.pipe_names == ["sentencizer", "trf_wordpiecer", "trf_tok2vec", "trf_textcat"]
    for text in POS5:
        assert nlp(text).cats["pos"] > 0.5
    for text in NEG5:
        assert nlp(text).cats["neg"] > 0.5
    meta = json.loads((trained["best"] / "meta.json").read_text())
    assert meta["performance"]["cats_macro_f"] == pytest.approx(1.0)
    # the transformer was fine-tuned, not only the head
    saved = load_file(str(trained["best"] / "trf_tok2vec" / "transformer" / "model.safetensors"))
    original = load_file(str(tiny_models["bert"] / "model.safetensors"))
    key = next(k for k in saved if k.endswith("encoder.layer.1.output.dense.weight"))
    assert not np.array_equal(saved[key], original[key])


def test_spacy_evaluate_scores_it_as_stream_trf_evaluate_does(trained, capsys) -> None:
    """spaCy's evaluate command (its function, in this process) and ours: one definition."""
    from spacy.cli.evaluate import evaluate

    spacy_scores = evaluate(str(trained["best"]), trained["root"] / "dev.spacy", silent=True)
    capsys.readouterr()
    assert main(["evaluate", str(trained["best"]), str(trained["root"] / "dev.spacy")]) == 0
    ours = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert spacy_scores["cats_macro_f"] == pytest.approx(ours["macro_f1"])
    assert spacy_scores["cats_micro_f"] == pytest.approx(ours["accuracy"])


def test_calibrate_then_spacy_package_installs_and_predicts_the_same(
    trained, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """spaCy's package command (``--build none``: the package directory, offline), installed
    by pip, loads by name and predicts what the calibrated model-best predicts."""
    import importlib

    from spacy.cli.package import package

    assert main(["calibrate", str(trained["best"]), str(trained["root"] / "dev.spacy")]) == 0
    nlp = spacy.load(trained["best"])
    assert nlp.get_pipe("trf_textcat").temperature != 1.0
    expected = [nlp(t).cats for t in POS5 + NEG5]
    packages = tmp_path / "packages"
    packages.mkdir()
    package(
        trained["best"],
        packages,
        name="tiny_spacy_train",
        version="0.0.1",
        create_sdist=False,
        create_wheel=False,
        force=True,
        silent=True,
    )
    package_dir = packages / "en_tiny_spacy_train-0.0.1"
    assert (package_dir / "setup.py").exists()
    site = tmp_path / "site"
    _run("-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--no-index",
         "--target", str(site), str(package_dir))  # fmt: skip
    monkeypatch.syspath_prepend(str(site))
    importlib.invalidate_caches()
    installed = spacy.load("en_tiny_spacy_train")
    assert installed.meta["version"] == "0.0.1"
    assert [installed(t).cats for t in POS5 + NEG5] == expected
