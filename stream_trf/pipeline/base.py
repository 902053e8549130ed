"""What both transformer components share: batch-at-once processing and serialization.

Each component keeps its Hugging Face files (tokenizer or weights) in a subdirectory of its own
folder in the saved pipeline, next to its settings (``cfg``), and loads them lazily: spaCy builds
the component from its config first and then calls ``from_disk``, so loading a saved pipeline
never touches the original model path. ``to_bytes`` packs the same files (msgpack: settings and
each file's bytes); ``from_bytes`` unpacks them into a temporary directory that lives as long as
the component, since transformers loads from files.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import srsly
from spacy.pipeline import Pipe
from spacy.tokens import Doc
from spacy.util import minibatch


class BatchPipe(Pipe):
    """A component that annotates a whole batch of docs at once."""

    name: str
    cfg: dict[str, Any]
    hf_dir_name: str = "hf"

    def set_annotations(self, docs: list[Doc]) -> None:
        raise NotImplementedError

    def load(self, model_dir: Path) -> None:
        raise NotImplementedError

    def save_hf(self, hf_dir: Path) -> None:
        raise NotImplementedError

    def __call__(self, doc: Doc) -> Doc:
        self.set_annotations([doc])
        return doc

    def pipe(self, stream: Iterable[Doc], *, batch_size: int = 128) -> Iterator[Doc]:
        for docs in minibatch(stream, size=batch_size):
            self.set_annotations(docs)
            yield from docs

    def to_disk(self, path: str | Path, *, exclude: Iterable[str] = ()) -> None:
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        srsly.write_json(path / "cfg", self.cfg)
        hf_dir = path / self.hf_dir_name
        if hf_dir.exists():
            shutil.rmtree(hf_dir)
        self.save_hf(hf_dir)

    def from_disk(self, path: str | Path, *, exclude: Iterable[str] = ()) -> BatchPipe:
        path = Path(path)
        self.cfg.update(srsly.read_json(path / "cfg"))
        self.load(path / self.hf_dir_name)
        return self

    def to_bytes(self, *, exclude: Iterable[str] = ()) -> bytes:
        with tempfile.TemporaryDirectory() as tmp:
            self.save_hf(Path(tmp))
            files = {
                str(f.relative_to(tmp)): f.read_bytes()
                for f in sorted(Path(tmp).rglob("*"))
                if f.is_file()
            }
        return srsly.msgpack_dumps({"cfg": self.cfg, "files": files})

    def from_bytes(self, bytes_data: bytes, *, exclude: Iterable[str] = ()) -> BatchPipe:
        msg = srsly.msgpack_loads(bytes_data)
        self.cfg.update(msg["cfg"])
        # Kept on the component: the loaded model and tokenizer may read their files again
        # (saving, reloading with other settings).
        self._unpacked = tempfile.TemporaryDirectory(prefix=f"stream-trf-{self.name}-")
        root = Path(self._unpacked.name)
        for name, data in msg["files"].items():
            target = root / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        self.load(root)
        return self
