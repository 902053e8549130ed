"""Misuse raises a typed error that says what to do."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import spacy

import stream_trf
from stream_trf.errors import (
    MissingSentenceBoundaries,
    MissingTokenizer,
    MissingWordpieces,
    ModelNotFound,
    StreamTrfError,
    UnsupportedModel,
)


def test_unknown_model_name(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFound, match="never downloads"):
        stream_trf.load(str(tmp_path / "no-such-model"))


def test_model_dir_without_tokenizer(tiny_models, tmp_path: Path) -> None:
    src = tiny_models["bert"]
    dst = tmp_path / "no-tokenizer"
    dst.mkdir()
    for name in ("config.json", "model.safetensors"):
        shutil.copy(src / name, dst / name)
    with pytest.raises(MissingTokenizer, match="save_pretrained"):
        stream_trf.load(str(dst))


def test_unknown_model_family(tiny_models, tmp_path: Path) -> None:
    dst = tmp_path / "weird"
    shutil.copytree(tiny_models["bert"], dst)
    config = json.loads((dst / "config.json").read_text())
    config["model_type"] = "definitely-not-a-family"
    (dst / "config.json").write_text(json.dumps(config))
    with pytest.raises(UnsupportedModel, match="model_type"):
        stream_trf.load(str(dst))


def test_missing_sentence_boundaries(tiny_models) -> None:
    nlp = spacy.blank("en")
    nlp.add_pipe("trf_wordpiecer", config={"model": str(tiny_models["bert"])})
    nlp.initialize()
    with pytest.raises(MissingSentenceBoundaries, match="sentencizer"):
        nlp("Some text. More text.")
    # An empty doc has nothing to split and is fine.
    assert len(nlp("")._.trf_word_pieces) == 0


def test_tok2vec_without_wordpiecer(tiny_models) -> None:
    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    nlp.add_pipe("trf_tok2vec", config={"model": str(tiny_models["bert"])})
    nlp.initialize()
    with pytest.raises(MissingWordpieces, match="trf_wordpiecer"):
        nlp("Some text.")


def test_bad_batch_budget(tiny_models) -> None:
    with pytest.raises(ValueError, match="words_per_batch"):
        stream_trf.load(str(tiny_models["bert"]), words_per_batch=-1)  # 0 means auto


def test_all_errors_share_a_base() -> None:
    for err in (
        ModelNotFound,
        MissingTokenizer,
        UnsupportedModel,
        MissingSentenceBoundaries,
        MissingWordpieces,
    ):
        assert issubclass(err, StreamTrfError)


def test_cuda_requested_without_a_gpu(tiny_models) -> None:
    import torch

    if torch.cuda.is_available():  # on a GPU machine the request is valid: check it runs there
        nlp = stream_trf.load(str(tiny_models["bert"]), device="cuda")
        assert nlp.get_pipe("trf_tok2vec").runner.device.type == "cuda"
    else:
        with pytest.raises(StreamTrfError, match="CUDA"):
            stream_trf.load(str(tiny_models["bert"]), device="cuda")
