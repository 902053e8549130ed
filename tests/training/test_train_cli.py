"""`stream-trf train` and `stream-trf evaluate` on a tiny separable set."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import spacy
from spacy.training import Example
from textcat_helpers import NEG5, POS5

from stream_trf.cli import main
from stream_trf.training.data import BadTrainingData, read_labelled
from stream_trf.training.evaluate import score


def _write(path: Path, rows: list[dict]) -> Path:
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n")
    return path


@pytest.fixture()
def data(tmp_path: Path) -> tuple[Path, Path]:
    rows = [{"text": t, "label": "pos"} for t in POS5] + [{"text": t, "label": "neg"} for t in NEG5]
    return _write(tmp_path / "train.jsonl", rows), _write(tmp_path / "dev.jsonl", rows)


def _train(tiny_models, data, out: Path, *extra: str) -> dict:
    """Run `stream-trf train` on ``data``; ``tiny_models=None`` trains on the default model."""
    train, dev = data
    model = [] if tiny_models is None else ["--model", str(tiny_models["bert"])]
    args = ["train", "--train", str(train), "--dev", str(dev), "--output", str(out)]
    assert main([*args, *model, "--quiet", *extra]) == 0
    return json.loads((out / "training.json").read_text())


def test_fine_tuning_learns_saves_and_plots(tiny_models, data, tmp_path: Path, capsys) -> None:
    summary = _train(
        tiny_models,
        data,
        tmp_path / "out",
        "--epochs",
        "12",
        "--batch-size",
        "4",
        "--learn-rate",
        "1e-3",
        "--warmup",
        "0",
    )
    log = summary["log"]
    assert log[-1]["loss"] < log[0]["loss"]
    assert summary["best_dev_macro_f1"] == pytest.approx(1.0)
    # balanced labels: the default square-root weights are all 1
    assert summary["class_weighting"] == "sqrt"
    assert summary["class_weights"] == {"neg": 1.0, "pos": 1.0}
    for name in ("model-best", "model-last", "training-curve.png", "training.json"):
        assert (tmp_path / "out" / name).exists()
    assert (tmp_path / "out" / "training-curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    capsys.readouterr()
    assert main(["evaluate", str(tmp_path / "out" / "model-best"), str(data[1])]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    last = json.loads(out[-1])
    assert last["accuracy"] == pytest.approx(1.0) and last["macro_f1"] == pytest.approx(1.0)
    assert any(line.startswith("pos") for line in out) and any(
        line.startswith("neg") for line in out
    )


def test_same_seed_same_run(tiny_models, data, tmp_path: Path) -> None:
    a = _train(
        tiny_models, data, tmp_path / "a", "--epochs", "2", "--batch-size", "4", "--seed", "3"
    )
    b = _train(
        tiny_models, data, tmp_path / "b", "--epochs", "2", "--batch-size", "4", "--seed", "3"
    )
    c = _train(
        tiny_models, data, tmp_path / "c", "--epochs", "2", "--batch-size", "4", "--seed", "4"
    )
    strip = lambda s: [{k: v for k, v in e.items() if k != "seconds"} for e in s["log"]]  # noqa: E731
    assert strip(a) == strip(b)
    assert strip(a) != strip(c)


def test_frozen_head_only_training(tiny_models, data, tmp_path: Path) -> None:
    summary = _train(
        tiny_models,
        data,
        tmp_path / "f",
        "--epochs",
        "30",
        "--freeze-transformer",
        "--batch-size",
        "4",
        "--pooling",
        "mean",
    )
    assert summary["freeze_transformer"] and summary["pooling"] == "mean"
    assert summary["log"][-1]["loss"] < summary["log"][0]["loss"]


def _scored(gold: list[str], pred: list[str], labels: list[str]) -> dict:
    """Examples whose predicted cats put 0.9 on ``pred`` and 0.1 / (n-1) elsewhere."""
    nlp = spacy.blank("en")
    examples = []
    for g, p in zip(gold, pred):
        eg = Example.from_dict(nlp.make_doc("x"), {"cats": {k: float(k == g) for k in labels}})
        eg.predicted.cats = {k: 0.9 if k == p else 0.1 / (len(labels) - 1) for k in labels}
        examples.append(eg)
    return score(examples, labels, exclusive=True)


def test_scores_against_a_hand_count() -> None:
    result = _scored(["a", "a", "b", "b", "c"], ["a", "b", "b", "b", "a"], ["a", "b", "c"])
    assert result["accuracy"] == pytest.approx(3 / 5)
    assert result["per_label"]["a"]["precision"] == pytest.approx(1 / 2)
    assert result["per_label"]["b"]["recall"] == pytest.approx(1.0)
    assert result["per_label"]["b"]["precision"] == pytest.approx(2 / 3)
    assert result["per_label"]["a"]["support"] == 2 and result["per_label"]["c"]["support"] == 1
    f1_a, f1_b, f1_c = 0.5, 0.8, 0.0
    assert result["macro_f1"] == pytest.approx((f1_a + f1_b + f1_c) / 3)
    # every doc's confidence is 0.9 and 3 of 5 are right: one bin, |0.6 - 0.9|
    assert result["ece"] == pytest.approx(0.3)


def test_bad_training_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"text": "no label"}\n')
    with pytest.raises(BadTrainingData, match="needs 'label'"):
        read_labelled(path)


def test_training_on_the_default_model_makes_a_new_head(data, tmp_path: Path) -> None:
    """The default pipeline ships a classifier; training replaces it with one for the new labels."""
    summary = _train(None, data, tmp_path / "d", "--epochs", "1", "--freeze-transformer")
    assert summary["labels"] == ["neg", "pos"]
    import stream_trf

    nlp = stream_trf.load(tmp_path / "d" / "model-last")
    assert nlp.pipe_names.count("trf_textcat") == 1
    assert set(nlp.get_pipe("trf_textcat").labels) == {"neg", "pos"}


def test_probe_then_fine_tune_starts_from_a_working_head(tiny_models, data, tmp_path: Path) -> None:
    """Head-only probing before fine-tuning: the first fine-tuning epoch starts from a head that
    already separates the classes, so its loss is lower than from a random head."""
    common = ("--epochs", "1", "--batch-size", "4", "--seed", "1", "--max-wordpieces", "6")
    probed = _train(tiny_models, data, tmp_path / "p", *common, "--probe-epochs", "30")
    cold = _train(tiny_models, data, tmp_path / "c", *common, "--probe-epochs", "0")
    assert probed["probe_epochs"] == 30 and cold["probe_epochs"] == 0
    assert probed["max_wordpieces"] == 6 and probed["probe_seconds"] > 0
    assert probed["log"][0]["loss"] < cold["log"][0]["loss"]


def test_class_weights_follow_the_counts_and_keep_the_mean_at_one() -> None:
    from stream_trf.training.data import Labelled, class_weights

    rows = [Labelled("a", {"big": 1.0})] * 90 + [Labelled("b", {"small": 1.0})] * 10
    labels = ["big", "small"]
    assert class_weights(rows, labels, "none") == {}
    for scheme, power in (("sqrt", 0.5), ("balanced", 1.0)):
        w = class_weights(rows, labels, scheme)
        assert w["small"] / w["big"] == pytest.approx((90 / 10) ** power)
        assert (90 * w["big"] + 10 * w["small"]) / 100 == pytest.approx(1.0)
    balanced = class_weights(rows, labels, "balanced")
    assert 90 * balanced["big"] == pytest.approx(10 * balanced["small"])  # equal total weight
    with pytest.raises(ValueError, match="one of"):
        class_weights(rows, labels, "inverse")


def test_convert_writes_every_label_of_every_doc(tmp_path: Path) -> None:
    """JSONL with `label` or `cats` → a DocBin whose docs carry every label (0 where a row
    names none), as spaCy's text classifiers and scorer expect."""
    from spacy.tokens import DocBin

    rows = [
        {"text": "A first text.", "cats": {"a": 1.0, "b": 1.0}},
        {"text": "A second one!", "cats": {"c": 1.0}},
    ]
    path = _write(tmp_path / "multi.jsonl", rows)
    assert main(["convert", str(path), str(tmp_path / "multi.spacy"), "--labels", "d"]) == 0
    docs = list(DocBin().from_disk(tmp_path / "multi.spacy").get_docs(spacy.blank("en").vocab))
    assert [d.text for d in docs] == ["A first text.", "A second one!"]
    assert docs[0].cats == {"a": 1.0, "b": 1.0, "c": 0.0, "d": 0.0}
    assert docs[1].cats == {"a": 0.0, "b": 0.0, "c": 1.0, "d": 0.0}
