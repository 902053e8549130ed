"""nlp.to_disk → spacy.load round trips, in a fresh process that never imports stream_trf; and
nlp.to_bytes → from_bytes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import spacy
from textcat_helpers import _examples, _pipeline, _train

import stream_trf

TEXTS = ["Here is some text to encode.", "Über café 😀. A second sentence!", ""]

_FRESH = """
import json, sys
import numpy as np
import spacy
nlp = spacy.load(sys.argv[1])
out = []
for doc in nlp.pipe(json.loads(sys.argv[2])):
    out.append({"tensor": doc.tensor.tolist(), "pieces": doc._.trf_word_pieces_, "cats": doc.cats,
                "imported_by_entry_point": "stream_trf" in sys.modules})
print(json.dumps({"pipe_names": nlp.pipe_names, "docs": out}))
"""


def _offline_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", HF_DATASETS_OFFLINE="1")
    # No route to any hub: a download attempt would fail loudly.
    env.update(HTTPS_PROXY="http://127.0.0.1:9", HTTP_PROXY="http://127.0.0.1:9")
    return env


def _roundtrip(model_dir: Path, tmp_path: Path, with_classifier: bool = False) -> None:
    nlp = stream_trf.load(str(model_dir))
    assert ("trf_textcat" in nlp.pipe_names) == with_classifier
    before = list(nlp.pipe(TEXTS))
    nlp.to_disk(tmp_path / "pipeline")

    # Same process.
    again = spacy.load(tmp_path / "pipeline")
    for a, b in zip(before, again.pipe(TEXTS)):
        np.testing.assert_array_equal(a.tensor, b.tensor)

    # Fresh process: factories come from entry points.
    proc = subprocess.run(
        [sys.executable, "-c", _FRESH, str(tmp_path / "pipeline"), json.dumps(TEXTS)],
        capture_output=True,
        text=True,
        env=_offline_env(),
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["pipe_names"] == nlp.pipe_names
    for doc, got in zip(before, result["docs"]):
        assert got["pieces"] == doc._.trf_word_pieces_
        np.testing.assert_array_equal(
            np.array(got["tensor"], dtype=np.float32).reshape(doc.tensor.shape), doc.tensor
        )
        assert got["imported_by_entry_point"]
        if with_classifier:
            assert got["cats"] == doc.cats


def test_roundtrip_tiny_xlnet(tiny_models, tmp_path: Path) -> None:
    _roundtrip(tiny_models["xlnet"], tmp_path)


def test_roundtrip_minilm_with_the_shipped_classifier(tmp_path: Path, minilm_dir: Path) -> None:
    _roundtrip(minilm_dir, tmp_path, with_classifier=True)


def test_saved_pipeline_keeps_its_settings(tiny_models, tmp_path: Path) -> None:
    nlp = stream_trf.load(str(tiny_models["bert"]), words_per_batch=123, window_overlap=7)
    nlp.to_disk(tmp_path / "p")
    loaded = stream_trf.load(tmp_path / "p")
    t2v = loaded.get_pipe("trf_tok2vec")
    assert t2v.cfg["words_per_batch"] == 123
    assert t2v.cfg["window_overlap"] == 7
    assert t2v.runner.max_length == 64


@pytest.mark.parametrize("family", ["roberta", "xlm"])
def test_to_bytes_round_trips_every_component(tiny_models, tmp_path: Path, family: str) -> None:
    """nlp.to_bytes() → a pipeline built from the same config → from_bytes: the same
    wordpieces, doc.tensor and cats (with the temperature), though the model directory the
    config names is gone by then."""
    model = tmp_path / family
    shutil.copytree(tiny_models[family], model)
    nlp = _pipeline(model)
    _train(nlp, _examples(nlp), 3)
    nlp.get_pipe("trf_textcat").cfg["temperature"] = 1.7
    expected = list(nlp.pipe(TEXTS))
    data = nlp.to_bytes()
    config = nlp.config
    shutil.rmtree(model)
    again = spacy.util.load_model_from_config(config)
    again.from_bytes(data)
    assert again.pipe_names == nlp.pipe_names
    assert again.get_pipe("trf_textcat").temperature == 1.7
    for a, b in zip(expected, again.pipe(TEXTS)):
        assert b._.trf_word_pieces_ == a._.trf_word_pieces_
        np.testing.assert_array_equal(b.tensor, a.tensor)
        assert b.cats == a.cats
    # and once more, from the restored pipeline's own bytes
    third = spacy.util.load_model_from_config(config).from_bytes(again.to_bytes())
    assert [d.cats for d in third.pipe(TEXTS)] == [d.cats for d in expected]


def test_a_pipeline_saved_by_an_earlier_version_still_loads(tmp_path: Path) -> None:
    """Before training went through spaCy's optimizer, trf_tok2vec and trf_textcat named their
    own learning rates in config.cfg, and trf_textcat had no ``model`` block: stream_trf.load
    (and so the worker's --model) reads such a pipeline, warns, and gives the same answers."""
    nlp = stream_trf.load()
    expected = [d.cats for d in nlp.pipe(TEXTS)]
    nlp.to_disk(tmp_path / "old")
    config = spacy.util.load_config(tmp_path / "old" / "config.cfg", interpolate=False)
    components = config["components"]
    components["trf_tok2vec"].update(learn_rate=5e-5, warmup_steps=0, total_steps=0)
    components["trf_tok2vec"]["weight_decay"] = 0.01
    components["trf_textcat"].update(learn_rate=1e-3, weight_decay=0.0, grad_clip=1.0)
    for added_since in ("model", "optimizer", "class_weighting"):
        components["trf_textcat"].pop(added_since)
    config.to_disk(tmp_path / "old" / "config.cfg")
    with pytest.raises(Exception, match="learn_rate"):
        spacy.load(tmp_path / "old")  # spaCy alone validates the config against today's factories
    with pytest.warns(FutureWarning, match="trf_tok2vec.learn_rate.*trf_textcat.grad_clip"):
        loaded = stream_trf.load(tmp_path / "old")
    assert [d.cats for d in loaded.pipe(TEXTS)] == expected
    assert "learn_rate" not in loaded.config["components"]["trf_tok2vec"]
    loaded.to_disk(tmp_path / "saved-again")
    assert [d.cats for d in spacy.load(tmp_path / "saved-again").pipe(TEXTS)] == expected
