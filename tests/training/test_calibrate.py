"""Temperature scaling and the expected calibration error, against hand counts and a brute-force
search; a fitted temperature is saved with the head, changes probabilities and never rankings."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from textcat_helpers import NEG, POS, _examples, _pipeline, _train

import stream_trf
from stream_trf.cli import main
from stream_trf.training.calibrate import (
    doc_probabilities,
    expected_calibration_error,
    fit_temperature,
    negative_log_likelihood,
)


def test_ece_against_a_hand_count() -> None:
    # 15 bins of width 1/15: 0.95 in (14/15, 1]; 0.91 and 0.93 in (13/15, 14/15];
    # 0.62 in (9/15, 10/15]; 0.58 in (8/15, 9/15]
    probs = np.array([[0.95, 0.05], [0.91, 0.09], [0.93, 0.07], [0.38, 0.62], [0.58, 0.42]])
    gold = np.array([[1, 0], [0, 1], [1, 0], [0, 1], [0, 1]])
    # right, wrong, right, right, wrong
    expected = (abs(1 - 0.95) + 2 * abs(0.5 - 0.92) + abs(1 - 0.62) + abs(0 - 0.58)) / 5
    assert expected_calibration_error(probs, gold, exclusive=True) == pytest.approx(expected)
    # multi-label: each probability is a yes/no call with confidence max(p, 1 - p)
    multi = np.array([[0.8, 0.3]])
    ece = expected_calibration_error(multi, np.array([[1, 1]]), exclusive=False)
    assert ece == pytest.approx((abs(1 - 0.8) + abs(0 - 0.7)) / 2)


def _overconfident(n: int, temperature: float, seed: int = 0) -> tuple[list, np.ndarray]:
    """Logits whose softmax at T=1 is calibrated by construction (labels drawn from it),
    multiplied by ``temperature``: the fitted temperature should be that factor back."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(scale=2.0, size=(n, 4))
    p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    labels = np.array([rng.choice(4, p=row) for row in p])
    gold = np.eye(4)[labels]
    return [row[None, :] * temperature for row in logits], gold


def test_fitted_temperature_undoes_a_known_overconfidence() -> None:
    logits, gold = _overconfident(4000, 2.5)
    t = fit_temperature(logits, gold, exclusive=True)
    assert t == pytest.approx(2.5, rel=0.08)
    before = expected_calibration_error(doc_probabilities(logits, 1.0, True), gold, True)
    after = expected_calibration_error(doc_probabilities(logits, t, True), gold, True)
    assert before > 0.08 and after < 0.03


@pytest.mark.parametrize("criterion", ["brier", "nll"])
def test_fitted_temperature_is_the_best_of_a_grid(criterion: str) -> None:
    """An independent check of the search: no temperature on a fine grid does better on the
    criterion it minimises."""
    logits, gold = _overconfident(600, 0.6, seed=3)

    def loss(t: float, exclusive: bool) -> float:
        probs = doc_probabilities(logits, t, exclusive)
        if criterion == "nll":
            return negative_log_likelihood(probs, gold, exclusive)
        return float(((probs - gold) ** 2).sum(axis=1).mean())

    for exclusive in (True, False):
        best = loss(fit_temperature(logits, gold, exclusive, criterion), exclusive)
        for g in np.geomspace(0.1, 10, 200):
            assert best <= loss(g, exclusive) + 1e-6


def test_the_temperature_tempers_the_average_of_a_docs_rows() -> None:
    """For a one-row doc it is the logits divided by T; for several rows, softmax(log p / T)
    of their mean probability p, which keeps the doc's ranking of its labels."""
    z = np.array([[2.0, 0.5, -1.0]])
    e = np.exp(z / 0.5)
    np.testing.assert_allclose(doc_probabilities([z], 0.5, True)[0], (e / e.sum())[0], rtol=1e-6)
    rows = np.array([[2.0, 0.5, -1.0], [-0.5, 1.5, 0.0]])
    p = (np.exp(rows) / np.exp(rows).sum(1, keepdims=True)).mean(0)
    expected = p**2 / (p**2).sum()
    np.testing.assert_allclose(doc_probabilities([rows], 0.5, True)[0], expected, rtol=1e-6)
    for t in (0.3, 3.0):
        assert np.argsort(doc_probabilities([rows], t, True)[0]).tolist() == np.argsort(p).tolist()


def test_temperature_is_saved_and_changes_probabilities_not_rankings(
    tiny_models, tmp_path: Path
) -> None:
    nlp = _pipeline(tiny_models["bert"])
    _train(nlp, _examples(nlp), 4)
    texts = POS + NEG
    before = [nlp(t).cats for t in texts]
    nlp.to_disk(tmp_path / "model")
    dev = tmp_path / "dev.jsonl"
    dev.write_text(
        "\n".join(json.dumps({"text": t, "label": "POS" if t in POS else "NEG"}) for t in texts)
    )
    assert main(["calibrate", str(tmp_path / "model"), str(dev)]) == 0
    calibrated = stream_trf.load(tmp_path / "model")
    tc = calibrated.get_pipe("trf_textcat")
    assert tc.temperature != 1.0
    # T minimises the Brier score, and T = 1 is among the candidates (ECE on 6 docs says nothing)
    assert tc.cfg["calibration"]["brier_after"] <= tc.cfg["calibration"]["brier_before"]
    after = [calibrated(t).cats for t in texts]
    for a, b in zip(before, after):
        assert max(a, key=a.get) == max(b, key=b.get)
        assert a != b
    # the probabilities are the head's logits divided by the temperature
    doc = calibrated(texts[0])
    z = tc.logits([tc.doc_features(doc)])
    expected = doc_probabilities(z, tc.temperature, True)[0]
    np.testing.assert_allclose([doc.cats[k] for k in tc.labels], expected, rtol=1e-5)
