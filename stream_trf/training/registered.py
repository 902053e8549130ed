"""What a spaCy training config names from this project besides the components and their
architectures: the augmenter that trains on the head of each doc, and the training log of
``stream-trf train``. Registered in spaCy's registries (and found through entry points, so
``python -m spacy train`` needs no ``--code``)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

from spacy.language import Language
from spacy.training import Example
from spacy.util import registry

from .data import truncate_to_wordpieces


@registry.augmenters("stream_trf.first_wordpieces.v1")
def first_wordpieces(
    max_wordpieces: int | None = None,
    wordpiecer: str = "trf_wordpiecer",
    textcat: str = "trf_textcat",
) -> Callable[[Language, Example], Iterator[Example]]:
    """Each training example cut to its first ``max_wordpieces`` wordpieces of the model (on a
    word boundary; 0 = whole docs; null = what the ``textcat`` component reads, its
    ``max_wordpieces``, so that training sees what serving reads). Most of an epoch's cost is
    in the long tail of long documents, and a document says what it is about first."""

    def augment(nlp: Language, example: Example) -> Iterator[Example]:
        limit = max_wordpieces
        if limit is None:
            limit = int(nlp.get_pipe(textcat).cfg.get("max_wordpieces") or 0)  # type: ignore[attr-defined]
        if limit <= 0:
            yield example
            return
        tokenizer = nlp.get_pipe(wordpiecer).tokenizer  # type: ignore[attr-defined]
        reference = example.reference
        text = reference.text
        cut = truncate_to_wordpieces(text, tokenizer, limit)
        span = reference.char_span(0, len(cut), alignment_mode="contract") if cut else None
        if len(cut) >= len(text.rstrip()) or span is None or len(span) == 0:
            yield example
            return
        head = span.as_doc()
        head.cats = dict(reference.cats)
        yield Example(nlp.make_doc(head.text), head)

    return augment


@registry.loggers("stream_trf.TrainingLog.v1")
def training_log(
    path: str | None = None, progress: bool = True
) -> Callable[
    [Language, IO[str], IO[str]], tuple[Callable[[dict[str, Any] | None], None], Callable[[], None]]
]:
    """After each evaluation of ``spacy train``'s loop: one line on stdout (loss, dev accuracy,
    macro-F1, time) and, with ``path``, one JSON line (epoch, step, mean loss per component
    since the last evaluation, every score, seconds). A progress bar counts the steps."""

    def setup(
        nlp: Language, stdout: IO[str], stderr: IO[str]
    ) -> tuple[Callable[[dict[str, Any] | None], None], Callable[[], None]]:
        from tqdm import tqdm

        max_steps = int(nlp.config["training"]["max_steps"] or 0)
        bar = tqdm(total=max_steps + 1 if max_steps else None, unit="step", disable=not progress)
        out = open(Path(path), "w", encoding="utf-8") if path else None  # noqa: SIM115
        started = time.time()
        last_step = -1

        def log_step(info: dict[str, Any] | None) -> None:
            nonlocal last_step
            bar.update(1)
            if info is None:
                return
            steps = max(info["step"] - last_step, 1)
            last_step = info["step"]
            losses = {k: float(v) / steps for k, v in info["losses"].items()}
            scores = {
                k: float(v)
                for k, v in (info["other_scores"] or {}).items()
                if isinstance(v, (int, float))
            }
            record = {
                "epoch": info["epoch"],
                "step": info["step"],
                "losses": losses,
                "scores": scores,
                "score": float(info["score"]),
                "seconds": round(time.time() - started, 1),
            }
            if out is not None:
                out.write(json.dumps(record) + "\n")
                out.flush()
            loss = losses.get("trf_textcat", sum(losses.values()))
            bar.write(
                f"step {info['step']} (epoch {info['epoch']}): loss {loss:.4f}  dev accuracy "
                f"{scores.get('cats_micro_f', 0.0):.4f}  macro-F1 "
                f"{scores.get('cats_macro_f', 0.0):.4f}  ({record['seconds']:.0f}s)",
                file=stdout,
            )

        def finalize() -> None:
            bar.close()
            if out is not None:
                out.close()

        return log_step, finalize

    return setup
