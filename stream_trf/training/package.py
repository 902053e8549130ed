"""`stream-trf package`: a trained pipeline → a pip-installable model package (a wheel).

The seed's ``python -m spacy download en_trf_…`` workflow for the user's own models: after
``pip install`` of the wheel, ``spacy.load(NAME)`` and ``stream-trf worker --model NAME`` work
offline. The package holds the weights, tokenizer files, config and the head; it is built by
spaCy's own packaging (``spacy package``), so it loads like any spaCy model package and finds
the stream_trf factories through their entry points.
"""

from __future__ import annotations

import importlib
import json
import shutil
import tempfile
from pathlib import Path

from ..errors import StreamTrfError
from ..extras import require


def package(model_dir: str | Path, out_dir: str | Path, *, name: str, version: str) -> Path:
    """Build a wheel; returns its path. ``name`` must start with the pipeline's language
    (``en_…``), as spaCy package names do."""
    require("package", "building a model package (a wheel)")
    spacy_package = importlib.import_module("spacy.cli.package").package

    model_dir, out_dir = Path(model_dir), Path(out_dir)
    meta_file = model_dir / "meta.json"
    if not (model_dir / "config.cfg").exists() or not meta_file.exists():
        raise StreamTrfError(
            f"{model_dir} is not a saved pipeline (no config.cfg / meta.json): give the "
            "model-best or model-last directory that stream-trf train wrote"
        )
    meta = json.loads(meta_file.read_text())
    lang = meta.get("lang", "en")
    if not name.startswith(f"{lang}_") or not name.replace("_", "").isalnum():
        raise StreamTrfError(
            f"package name {name!r}: use letters, digits and underscores, starting with the "
            f"pipeline's language, e.g. {lang}_{name.replace('-', '_')}"
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        staged = Path(tmp) / "pipeline"
        shutil.copytree(model_dir, staged)
        meta.update(
            name=name[len(lang) + 1 :],
            version=version,
            description=meta.get("description") or "stream_trf pipeline",
        )
        (staged / "meta.json").write_text(json.dumps(meta, indent=2))
        build = Path(tmp) / "build"
        build.mkdir()
        spacy_package(staged, build, create_sdist=False, create_wheel=True, force=True, silent=True)
        wheels = sorted(build.glob("*/dist/*.whl"))
        if not wheels:
            raise StreamTrfError(f"spaCy's packaging built no wheel in {build}")
        target = out_dir / wheels[-1].name
        shutil.copy(wheels[-1], target)
    return target
