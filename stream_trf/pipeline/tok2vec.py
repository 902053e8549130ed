"""``trf_tok2vec``: the transformer over every sentence of a batch of docs, rows back per doc.

For one ``nlp.pipe`` batch: cut over-long sentences into windows, sort all windows of all docs
by length and run them in padded sub-batches of at most ``words_per_batch`` wordpieces, stitch
the rows back per sentence and per doc, and rebuild ``doc.tensor`` with one row per spaCy token
(``W @ H``, sum-preserving).
"""

from __future__ import annotations

import shutil
import time
import weakref
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future
from itertools import groupby
from pathlib import Path
from typing import Any, NamedTuple, cast

import numpy as np
import torch
from spacy.language import Language
from spacy.tokens import Doc
from spacy.util import minibatch
from thinc.api import Model, Optimizer

from .. import auto
from ..errors import MissingWordpieces, StreamTrfError
from ..model.lanes import Lanes, resolve_lanes
from ..model.runner import SequenceOutput, TransformerRunner
from ..model.source import DEFAULT_MODEL, resolve_model_dir
from ..text.alignment import rebuild_batch
from ..text.batching import Window, make_batches, plan_windows, stitch
from .base import BatchPipe
from .extensions import (
    DocWordpieces,
    PooledOutputs,
    TransformerOutputs,
    align_docs,
    clear_doc_gradient,
    doc_outputs,
    doc_pieces,
    install_extensions,
    set_doc_outputs,
    set_vector_hooks,
)
from .listener import TransformerListener
from .pooled_batch import PooledPlan, gather_pooled, plan_pooled
from .prefetch import iter_ahead
from .training import (
    PendingBackward,
    clip_grad_norm,
    new_param_key,
    step_torch_params,
    swapped_params,
)

install_extensions()


class ModelInputs(NamedTuple):
    windows: list[Window]
    owners: list[tuple[int, int]]  # per window: (doc, sentence)
    wordpieces: list[DocWordpieces]  # per doc
    ids: list[np.ndarray]  # per window
    types: list[np.ndarray | None]  # per window


class InFlight(NamedTuple):
    """A batch of docs whose sub-batches are on the model lanes."""

    docs: list[Doc]
    inputs: ModelInputs | None  # None on the pooled path (``plan``)
    batches: Sequence[Any]  # per sub-batch: window indices, or with ``plan`` sentence indices
    results: list[Future[Any]]  # per sub-batch: its outputs
    started: float
    rows: np.ndarray | None = None  # every doc's wordpiece rows, written by the lanes
    plan: PooledPlan | None = None  # outputs="pooled": over arrays (pipeline/pooled_batch.py)
    long: LongSentences | None = None  # with ``plan``: its sentences cut into windows


class LongSentences(NamedTuple):
    """A pooled plan's sentences longer than the model takes, as windows on the lanes."""

    sentences: list[int]  # per window: its sentence in the plan (a sentence's windows in a row)
    windows: list[Window]
    batches: list[list[int]]  # per sub-batch: window indices
    results: list[Future[list[SequenceOutput]]]  # per sub-batch: each window's rows


OUTPUTS = ("rows", "pooled")


DEFAULT_CONFIG: dict[str, Any] = {
    "model": DEFAULT_MODEL,
    "words_per_batch": 0,
    "batch_cost": auto.BATCH_COST,
    "max_length": None,
    "window_overlap": 64,
    "output_hidden_states": False,
    "output_attentions": False,
    "device": "auto",
    "precision": "fp32",
    "packing": "auto",
    "trace": "auto",
    "doc_tensor": True,
    "outputs": "rows",
    "prefetch": 1,
    "lanes": 0,
    # Training through spaCy (see pipeline/training.py)
    "grad_factor": 1.0,
    "grad_clip": 1.0,
    "optimizer": None,
}


@Language.factory("trf_tok2vec", default_config=DEFAULT_CONFIG)
def make_tok2vec(
    nlp: Language,
    name: str,
    model: str,
    words_per_batch: int,
    batch_cost: float | None,
    max_length: int | None,
    window_overlap: int,
    output_hidden_states: bool,
    output_attentions: bool,
    device: str,
    precision: str,
    packing: str,
    trace: str,
    doc_tensor: bool,
    outputs: str,
    prefetch: int,
    lanes: int,
    grad_factor: float,
    grad_clip: float,
    optimizer: Optimizer | None,
) -> TransformerTok2Vec:
    """Run the transformer per sentence and set ``doc.tensor`` (one row per spaCy token).

    model: a model name or directory (resolved locally; nothing is downloaded).
    words_per_batch: most padded wordpieces in one sub-batch (rows × longest row); 0 = auto:
        1,000 on a CPU (× 384 / width for a model narrower than 384, at most 32,000), 32,000
        on a GPU (stream_trf.auto; training uses 1,000).
    batch_cost: what one forward pass costs beyond its wordpieces, in wordpieces (32 measured
        on a CPU; the worker's own scales by 384 / width for a narrower model on a CPU:
        stream_trf.auto): sub-batches are cut where padded wordpieces plus this per sub-batch
        is least (text/batching.make_batches). None, and padding-free (packed) runs, fill each
        sub-batch as far as words_per_batch allows.
    max_length: longest sequence the model gets; default: what the model allows.
    window_overlap: wordpieces shared by consecutive windows of an over-long sentence.
    output_hidden_states / output_attentions: keep every layer's rows / attention weights.
    device: "auto" (CUDA when present), "cpu", "cuda", "cuda:N".
    precision: "fp32"; "int8" (CPU, dynamic quantization) or "fp16"/"bf16" (GPU), inference
        only and gated by the fidelity report of ``stream-trf bench --precisions``.
    packing: "auto" runs BERT-family models padding-free on CUDA (variable-length attention,
        model/packed.py); "on" forces it on any device, "off" always pads.
    doc_tensor: rebuild ``doc.tensor`` (one row per token) as each batch finishes; False
        builds it on first use instead (``.vector`` of tokens and spans).
    outputs: "rows" keeps every wordpiece row (``doc._.trf_last_hidden_state``); "pooled"
        keeps per sentence only the sum of its rows and its class-token row, reduced on the
        lanes as each sub-batch finishes: ``doc.vector``, similarity and ``trf_textcat`` work,
        token and span rows raise ``RowsNotKept``. For streams that publish doc-level
        outputs: a batch's rows are never held (stream_trf.stream.worker uses it). Inference
        only: training (``nlp.update``) always keeps rows.
    prefetch: in ``nlp.pipe``, batches of docs the upstream components (tokenizer, sentencizer,
        wordpiecer) prepare in a thread while the transformer computes; 0 = none.
    lanes: sub-batches computed at once, each on its own threads (model/lanes.py); 0 = auto:
        one lane per PyTorch thread on a CPU (each single-threaded), one on a GPU.
    grad_factor: scales the gradients listeners send back; 0 freezes the transformer (no
        transformer gradients are computed at all).
    grad_clip: the most the transformer's whole gradient's norm may be before a step (the
        optimizer's own ``grad_clip`` clips each parameter array alone); 0 = no clipping.
    optimizer: a Thinc optimizer of its own (a learning rate and schedule for the transformer
        alone); null: the one spaCy passes (``[training.optimizer]``).
    """
    return TransformerTok2Vec(
        nlp.vocab,
        nlp=nlp,
        name=name,
        model=model,
        words_per_batch=words_per_batch,
        batch_cost=batch_cost,
        max_length=max_length,
        window_overlap=window_overlap,
        output_hidden_states=output_hidden_states,
        output_attentions=output_attentions,
        device=device,
        precision=precision,
        packing=packing,
        trace=trace,
        doc_tensor=doc_tensor,
        outputs=outputs,
        prefetch=prefetch,
        lanes=lanes,
        grad_factor=grad_factor,
        grad_clip=grad_clip,
        optimizer=optimizer,
    )


class TransformerTok2Vec(BatchPipe):
    """spaCy component: wordpieces → transformer rows → ``doc.tensor``."""

    hf_dir_name = "transformer"

    def __init__(
        self, vocab: Any, name: str = "trf_tok2vec", nlp: Language | None = None, **cfg: Any
    ) -> None:
        self.vocab = vocab
        self.name = name
        self._nlp = weakref.ref(nlp) if nlp is not None else None
        # Not settings (cfg is saved as JSON): the optimizer of its own, if configured, and
        # what training keeps between a batch's update and its step.
        self.own_optimizer: Optimizer | None = cfg.pop("optimizer", None)
        self._param_key = new_param_key()
        self._pending: PendingBackward | None = None
        self._step_with: Optimizer | None = None
        # Listener layers downstream, by component (filled by spaCy's _link_components).
        self.listener_map: dict[str, list[Model]] = {}
        self.cfg: dict[str, Any] = {**DEFAULT_CONFIG, **cfg}
        self.cfg.pop("optimizer", None)
        if int(self.cfg["words_per_batch"]) < 0:
            raise ValueError(
                f"words_per_batch must be positive (or 0 = auto), got {self.cfg['words_per_batch']}"
            )
        if self.cfg["batch_cost"] is not None and float(self.cfg["batch_cost"]) < 0:
            raise ValueError(f"batch_cost must be >= 0, got {self.cfg['batch_cost']}")
        self._check_outputs()
        self._runner: TransformerRunner | None = None
        self._lanes: Lanes | None = None
        # Called on the lane after each sub-batch with its real wordpieces (the worker hands
        # freed heap back to the OS from it: stream/memory.py). Not config: a process's business.
        self.after_sub_batch: Callable[[int], None] | None = None

    def _check_outputs(self) -> bool:
        """Whether outputs are pooled; refuses settings that contradict each other."""
        outputs = self.cfg["outputs"]
        if outputs not in OUTPUTS:
            raise ValueError(f"outputs must be one of {OUTPUTS}, got {outputs!r}")
        if outputs == "pooled" and (
            self.cfg["output_hidden_states"] or self.cfg["output_attentions"]
        ):
            raise ValueError(
                "outputs='pooled' keeps no rows, so it cannot keep hidden states or attention "
                "weights either: use outputs='rows' with output_hidden_states/output_attentions"
            )
        return bool(outputs == "pooled")

    # --- model loading -------------------------------------------------------------------

    @property
    def runner(self) -> TransformerRunner:
        if self._runner is None:
            self.load(resolve_model_dir(self.cfg["model"]))
        assert self._runner is not None
        return self._runner

    def load(self, model_dir: Path) -> None:
        if self._lanes is not None:
            self._lanes.close()
            self._lanes = None
        self._runner = TransformerRunner(
            Path(model_dir),
            device=self.cfg["device"],
            precision=self.cfg["precision"],
            packing=self.cfg.get("packing", "auto"),
            trace=self.cfg.get("trace", "auto"),
            max_length=self.cfg["max_length"],
            output_hidden_states=self.cfg["output_hidden_states"],
            output_attentions=self.cfg["output_attentions"],
        )

    def initialize(self, get_examples: Any = None, *, nlp: Any = None) -> None:
        if self._runner is None:
            self.load(resolve_model_dir(self.cfg["model"]))

    @property
    def width(self) -> int:
        return self.runner.width

    @property
    def lanes(self) -> Lanes:
        if self._lanes is None:
            n = resolve_lanes(int(self.cfg.get("lanes", 0)), self.runner.device)
            self._lanes = Lanes(n)
        return self._lanes

    # --- processing ----------------------------------------------------------------------

    def plan(self, docs: list[Doc]) -> tuple[list[Window], list[tuple[int, int]]]:
        """Every model input of ``docs``: windows, and per window its (doc, sentence)."""
        inputs = self.model_inputs(docs)
        return inputs.windows, inputs.owners

    def pipe(self, stream: Iterable[Doc], *, batch_size: int = 128) -> Iterator[Doc]:
        """Batches of docs through the transformer, pipelined: upstream components run ahead in
        a thread, and while the lanes compute one batch this thread finishes the previous one
        (``doc.tensor`` and the outputs) and plans the next."""
        ahead = int(self.cfg["prefetch"]) * batch_size
        in_flight: deque[InFlight] = deque()
        for docs in minibatch(iter_ahead(stream, ahead), size=batch_size):
            in_flight.append(self.launch(docs))
            if len(in_flight) > 1:
                yield from self.finish(in_flight.popleft())
        while in_flight:
            yield from self.finish(in_flight.popleft())

    def model_inputs(self, docs: list[Doc]) -> ModelInputs:
        """The windows of ``docs`` and the ids / token types each feeds to the model.

        A sentence that fits the model is one window whose inputs are views of the doc's
        arrays; only longer ones go through ``plan_windows``. Plain ints, no numpy scalars, in
        the loop: it runs once per sentence, beside the model, and holds the GIL."""
        max_length = self.runner.max_length
        overlap = self.cfg["window_overlap"]
        windows: list[Window] = []
        owners: list[tuple[int, int]] = []
        wps: list[DocWordpieces] = []
        ids: list[np.ndarray] = []
        types: list[np.ndarray | None] = []
        for d, doc in enumerate(docs):
            wp = _wordpieces(doc, self.name)
            wps.append(wp)
            bounds = wp.sentence_starts.tolist()
            prefix = wp.sentence_prefix.tolist()
            suffix = wp.sentence_suffix.tolist()
            for s, (p, q) in enumerate(zip(prefix, suffix)):
                a, b = bounds[s], bounds[s + 1]
                if b - a <= max_length:
                    n_content = b - a - p - q
                    windows.append(Window(s, 0, n_content, 0, n_content, p, q))
                    owners.append((d, s))
                    ids.append(wp.ids[a:b])
                    types.append(None if wp.type_ids is None else wp.type_ids[a:b])
                    continue
                for w in plan_windows(s, b - a - p - q, p, q, max_length, overlap):
                    windows.append(w)
                    owners.append((d, s))
                    seq_ids, seq_types = _window_inputs(wp, s, w)
                    ids.append(seq_ids)
                    types.append(seq_types)
        return ModelInputs(windows, owners, wps, ids, types)

    def set_annotations(self, docs: list[Doc]) -> None:
        self.finish(self.launch(docs))

    def launch(self, docs: list[Doc], *, keep_rows: bool = False) -> InFlight:
        """Plan ``docs``' sub-batches and put them on the model lanes (returns at once when
        there are several lanes; with one, after the model has run). ``keep_rows`` overrides
        ``outputs="pooled"`` (training needs rows)."""
        started = time.perf_counter()
        pooled = self._check_outputs() and not keep_rows
        runner = self.runner
        if pooled:  # no rows kept: sub-batches of sentence indices, no per-sentence objects
            plan = plan_pooled([_wordpieces(doc, self.name) for doc in docs], runner.max_length)
            return self._launch_plan(docs, plan, started)
        inputs = self.model_inputs(docs)
        ids, types = inputs.ids, inputs.types
        lanes = self.lanes
        lengths = [len(x) for x in ids]
        cost = None if runner.packed or self.cfg["batch_cost"] is None else self.cfg["batch_cost"]
        batches = make_batches(lengths, self._budget(lengths, lanes.n), cost)
        # Biggest first (the lanes take them in order): the last to run are the smallest, so
        # the lanes finish together instead of one idling while another runs the longest.
        batches.sort(key=lambda b: len(b) * lengths[b[-1]], reverse=True)
        rows, into = self._rows_for_lanes(inputs)
        results = [
            lanes.submit(
                self._run_sub_batch,
                [ids[i] for i in b],
                [types[i] for i in b],
                [into[i] for i in b] if into is not None else None,
            )
            for b in batches
        ]
        return InFlight(docs, inputs, batches, results, started, rows)

    def _launch_plan(self, docs: list[Doc], plan: PooledPlan, started: float) -> InFlight:
        """``launch`` for the pooled path over arrays: sub-batches of sentence indices, and
        the plan's long sentences as windows (submitted first: theirs are the biggest)."""
        lanes = self.lanes
        long = self._launch_long(plan) if len(plan.long) else None
        fitting = plan.fitting
        lengths = plan.lengths[fitting]
        cost = None if self.runner.packed else self.cfg["batch_cost"]
        batches = make_batches(lengths, self._budget(lengths.tolist(), lanes.n), cost)
        batches.sort(key=lambda b: len(b) * int(lengths[b[-1]]), reverse=True)  # biggest first
        index = [fitting[np.asarray(b, dtype=np.int64)] for b in batches]
        results = [lanes.submit(self._run_pooled_sub_batch, plan, idx) for idx in index]
        return InFlight(docs, None, index, results, started, None, plan, long)

    def _launch_long(self, plan: PooledPlan) -> LongSentences:
        """The plan's long sentences cut into windows, on the lanes in sub-batches (rows)."""
        max_length, overlap = self.runner.max_length, self.cfg["window_overlap"]
        sentences: list[int] = []
        windows: list[Window] = []
        ids: list[np.ndarray] = []
        types: list[np.ndarray | None] = []
        for g in plan.long.tolist():
            d, s = plan.owner(g)
            wp = plan.wordpieces[d]
            p, q = int(wp.sentence_prefix[s]), int(wp.sentence_suffix[s])
            n_content = int(plan.lengths[g]) - p - q
            for w in plan_windows(s, n_content, p, q, max_length, overlap):
                sentences.append(g)
                windows.append(w)
                seq_ids, seq_types = _window_inputs(wp, s, w)
                ids.append(seq_ids)
                types.append(seq_types)
        lengths = [len(x) for x in ids]
        cost = None if self.runner.packed else self.cfg["batch_cost"]
        batches = make_batches(lengths, self._budget(lengths, self.lanes.n), cost)
        results = [
            self.lanes.submit(self._run_sub_batch, [ids[i] for i in b], [types[i] for i in b], None)
            for b in batches
        ]
        return LongSentences(sentences, windows, batches, results)

    def _run_pooled_sub_batch(
        self, plan: PooledPlan, sentences: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """One sub-batch of the plan's sentences on a lane, then the ``after_sub_batch`` hook."""
        lengths = plan.lengths[sentences]
        out = self.runner.predict_pooled(plan.ids, plan.type_ids, plan.starts[sentences], lengths)
        hook = self.after_sub_batch
        if hook is not None:
            hook(int(lengths.sum()))
        return out

    def _run_sub_batch(
        self,
        ids: list[np.ndarray],
        types: list[np.ndarray | None],
        into: list[np.ndarray | None] | None,
    ) -> list[SequenceOutput]:
        """One sub-batch on a lane, then the ``after_sub_batch`` hook."""
        out = self.runner.predict(ids, types, into)
        hook = self.after_sub_batch
        if hook is not None:
            hook(sum(len(x) for x in ids))
        return out

    def _rows_for_lanes(
        self, inputs: ModelInputs
    ) -> tuple[np.ndarray | None, list[np.ndarray | None] | None]:
        """The array of every doc's wordpiece rows, and per window the slice of it that the lane
        running the window writes its output to: sentences of one window only (longer ones are
        stitched from overlapping windows in ``_set_docs``). The lanes fill it while they run,
        so the serial step after the model gathers nothing, and a batch of docs holds its rows
        once, not twice. Only the last hidden state, and not on padding-free (packed) runs,
        whose outputs are views already."""
        if (
            self.runner.packed
            or self.cfg["output_hidden_states"]
            or self.cfg["output_attentions"]
            or not inputs.windows
        ):
            return None, None
        owners, wps = inputs.owners, inputs.wordpieces
        starts = _doc_offsets(wps).tolist()
        rows = np.empty((starts[-1], self.runner.width), dtype=np.float32)
        into: list[np.ndarray | None] = [None] * len(owners)
        for k, alone in enumerate(_single_window(owners)):
            if alone:
                d, s = owners[k]
                sl = wps[d].sentence(s)
                into[k] = rows[starts[d] + sl.start : starts[d] + sl.stop]
        return rows, into

    @property
    def words_per_batch(self) -> int:
        """The sub-batch size inference uses: the setting, or for 0 the default for the
        device and the model's width."""
        n = int(self.cfg["words_per_batch"])
        if n > 0:
            return n
        return auto.words_per_batch(self.runner.device.type, width=self.runner.width or None)

    def _budget(self, lengths: list[int], n_lanes: int) -> int:
        """The sub-batch budget: ``words_per_batch``, or less when a batch of docs is too small
        to give every lane a sub-batch — then it is cut into at least one sub-batch per lane
        (half the real wordpieces each for two lanes; padding may make it one more), so a
        worker's small buffers (light load) use every core, not one."""
        budget = self.words_per_batch
        if n_lanes > 1 and lengths:
            budget = min(budget, max(max(lengths), -(-sum(lengths) // n_lanes)))
        return budget

    def finish(self, job: InFlight) -> list[Doc]:
        """Wait for a launched batch and set its docs' outputs and ``doc.tensor``."""
        docs = job.docs
        if job.plan is not None:
            plan = job.plan
            sums, class_rows = gather_pooled(
                plan, job.batches, [result.result() for result in job.results], self.runner.width
            )
            windowed = (
                _reduce_long(plan, job.long, sums, class_rows) if job.long is not None else None
            )
            model_s = time.perf_counter() - job.started
            self._assign_pooled(
                docs, plan.lengths, sums, class_rows, plan.doc_sentences.tolist(), windowed
            )
        else:
            assert job.inputs is not None
            outputs: list[SequenceOutput | None] = [None] * len(job.inputs.windows)
            for batch, result in zip(job.batches, job.results):
                for k, res in zip(batch, result.result()):
                    outputs[k] = res
            model_s = time.perf_counter() - job.started
            self._set_docs(docs, job.inputs, outputs, job.rows)
        per_doc = model_s / max(len(docs), 1)
        for doc in docs:
            cast(TransformerOutputs, doc_outputs(doc)).timings["transformer_s"] = per_doc
        return docs

    def _set_docs(
        self,
        docs: list[Doc],
        inputs: ModelInputs,
        outputs: list[SequenceOutput | None],
        filled: np.ndarray | None = None,
    ) -> None:
        """Each doc's wordpiece rows, ``doc.tensor`` and vector hooks, for a whole batch at once.

        The rows of all docs go into one array (a doc's rows are a slice of it), and
        ``doc.tensor`` is rebuilt for all docs in one scatter-add: per-doc array and torch
        calls were most of this step's time, and it runs beside the model."""
        windows, owners, wps = inputs.windows, inputs.owners, inputs.wordpieces
        runner = self.runner
        keep_hidden = bool(self.cfg["output_hidden_states"])
        keep_attentions = bool(self.cfg["output_attentions"])
        starts = _doc_offsets(wps)
        first = next((o for o in outputs if o is not None), None)
        n_layers = len(first.hidden_states or []) if first is not None else 0
        # ``filled``: the lanes already wrote the single-window sentences' rows into it
        rows = (
            filled
            if filled is not None
            else np.empty((int(starts[-1]), runner.width), dtype=np.float32)
        )
        hidden = [np.empty_like(rows) for _ in range(n_layers)]
        windowed = [0] * len(docs)
        attentions: list[list[list[Any]]] = [[] for _ in docs]
        attention_pieces: list[list[np.ndarray]] = [[] for _ in docs]
        offsets = starts.tolist()
        for d, s, k, j in _sentence_windows(owners):
            sl = wps[d].sentence(s)
            a, b = offsets[d] + sl.start, offsets[d] + sl.stop
            group = cast(list[SequenceOutput], outputs[k:j])
            if j == k + 1:
                if group[0].last_hidden_state.base is not rows:  # not written there already
                    rows[a:b] = group[0].last_hidden_state
                for layer in range(n_layers):
                    hidden[layer][a:b] = group[0].hidden_states[layer]  # type: ignore[index]
            else:
                wins = windows[k:j]
                rows[a:b] = stitch(wins, [g.last_hidden_state for g in group])
                for layer in range(n_layers):
                    hidden[layer][a:b] = stitch(wins, [g.hidden_states[layer] for g in group])  # type: ignore[index]
                windowed[d] += b - a
            if keep_attentions:
                for w, out in zip(windows[k:j], group):
                    attentions[d].append(out.attentions or [])
                    attention_pieces[d].append(_window_rows(wps[d], s, w))
        tensors = None
        if self.cfg.get("doc_tensor", True):
            align_docs(wps)
            tensors = rebuild_batch([wp.rebuild for wp in wps], rows)[0]
        for d, doc in enumerate(docs):
            a, b = offsets[d], offsets[d + 1]
            set_doc_outputs(
                doc,
                TransformerOutputs(
                    last_hidden_state=rows[a:b],
                    hidden_states=[h[a:b] for h in hidden] if keep_hidden else None,
                    attentions=attentions[d] if keep_attentions else None,
                    attention_pieces=attention_pieces[d] if keep_attentions else None,
                    windowed_wordpieces=windowed[d],
                    model_name=runner.name,
                ),
            )
            clear_doc_gradient(doc)  # created by training (update) only
            if tensors is not None:
                doc.tensor = cast(Any, tensors[d])
            else:  # built on first use (extensions.token_rows); a reused doc's old rows go
                doc.tensor = cast(Any, np.zeros((0, runner.width), dtype=np.float32))
            set_vector_hooks(doc)

    def _assign_pooled(
        self,
        docs: list[Doc],
        lengths: np.ndarray,
        sums: np.ndarray,
        class_rows: np.ndarray,
        sent_offsets: list[int],
        windowed: list[int] | None,
    ) -> None:
        """Each doc's pooled outputs: its sentences' slice of ``sums``, ``class_rows`` and
        ``lengths`` (wordpieces per sentence, the plan's)."""
        runner = self.runner
        name = runner.name
        empty = np.zeros((0, runner.width), dtype=np.float32)
        for d, doc in enumerate(docs):
            a, b = sent_offsets[d], sent_offsets[d + 1]
            set_doc_outputs(
                doc,
                TransformerOutputs(
                    last_hidden_state=None,
                    windowed_wordpieces=windowed[d] if windowed is not None else 0,
                    model_name=name,
                    pooled=PooledOutputs(
                        sentence_sums=sums[a:b],
                        class_rows=class_rows[a:b],
                        sentence_lengths=lengths[a:b],
                    ),
                ),
            )
            clear_doc_gradient(doc)
            doc.tensor = cast(Any, empty)
            set_vector_hooks(doc)

    # --- training (pipeline/training.py explains the mechanism) ----------------------------

    @property
    def is_trainable(self) -> bool:
        return True

    @property
    def model(self) -> Any:
        """The torch module once loaded, else None (spaCy checks that a trainable component
        has one, and the check must not load it: a saved pipeline loads its own weights in
        ``from_disk``, never the ones its config names)."""
        return self._runner.model if self._runner is not None else None

    @property
    def frozen(self) -> bool:
        return float(self.cfg["grad_factor"]) == 0.0

    # --- listeners (spaCy's ListenedToComponent, plus components with listens_to_trf) ---------

    @property
    def listeners(self) -> list[Model]:
        """The ``stream_trf.TransformerListener.v1`` layers of the components downstream."""
        return [layer for layers in self.listener_map.values() for layer in layers]

    @property
    def listening_components(self) -> list[str]:
        return [pipe.name for pipe in self.listener_components()]

    def add_listener(self, listener: Model, component_name: str) -> None:
        found = self.listener_map.setdefault(component_name, [])
        if listener not in found:
            found.append(listener)
        if isinstance(listener, TransformerListener):
            listener.attach(self, component_name)

    def remove_listener(self, listener: Model, component_name: str) -> bool:
        found = self.listener_map.get(component_name, [])
        if listener not in found:
            return False
        found.remove(listener)
        if not found:
            del self.listener_map[component_name]
        return True

    def find_listeners(self, component: Any) -> None:
        """Register the listener layers in ``component``'s model that name this component (or
        ``"*"``) upstream. spaCy calls it for every component after this one."""
        model = getattr(component, "model", None)
        if not isinstance(model, Model):
            return
        for node in model.walk():
            if isinstance(node, TransformerListener) and node.upstream_name in ("*", self.name):
                self.add_listener(node, component.name)

    def listener_components(self) -> list[Any]:
        """Trainable components after this one that train on its rows: those with
        ``listens_to_trf = True`` (trf_textcat) and those whose model holds a listener layer."""
        nlp = self._nlp() if self._nlp is not None else None
        if nlp is None:
            return []
        names = [name for name, _ in nlp.pipeline]
        after = names[names.index(self.name) + 1 :] if self.name in names else []
        out = []
        for name in after:
            pipe = nlp.get_pipe(name)
            listens = getattr(pipe, "listens_to_trf", False) or name in self.listener_map
            if listens and getattr(pipe, "is_trainable", False):
                out.append(pipe)
        return out

    def prepare(self, docs: list[Doc]) -> None:
        """Run the components before this one on docs that have not been through them (the
        predicted docs of spaCy Examples are only tokenized)."""
        nlp = self._nlp() if self._nlp is not None else None
        if nlp is None or all(doc._.trf_pieces is not None for doc in docs):
            return
        todo = [doc for doc in docs if doc._.trf_pieces is None]
        for name, proc in nlp.pipeline:
            if name == self.name:
                break
            if hasattr(proc, "set_annotations") and isinstance(proc, BatchPipe):
                proc.set_annotations(todo)
            else:
                todo = [proc(doc) for doc in todo]

    def update(
        self,
        examples: Iterable[Any],
        *,
        drop: float = 0.0,
        sgd: Any = None,
        losses: dict[str, float] | None = None,
    ) -> dict[str, float]:
        """Forward with autograd (unless frozen); listeners send gradients back."""
        losses = {} if losses is None else losses
        losses.setdefault(self.name, 0.0)
        docs = [eg.predicted for eg in examples]
        self.prepare(docs)
        self._pending = None  # a batch whose listeners never reported is dropped
        self._step_with = None
        listeners = self.listener_components()
        if self.frozen or not listeners:
            self.finish(self.launch(docs, keep_rows=True))  # listeners read the rows
            return losses
        runner = self.runner
        if runner.precision != "fp32":
            raise StreamTrfError(
                f"{self.name}: fine-tuning needs precision fp32, this pipeline runs "
                f"{runner.precision} (inference only); load it with precision='fp32' to train"
            )
        runner.model.train()
        try:
            rows = self._forward_with_grad(docs)
        finally:
            runner.model.eval()
        self._pending = PendingBackward(docs, rows, {p.name for p in listeners}, losses)
        return losses

    def _forward_with_grad(self, docs: list[Doc]) -> list[torch.Tensor]:
        runner = self.runner
        windows, owners, wps, ids, types = self.model_inputs(docs)
        window_rows: list[torch.Tensor | None] = [None] * len(windows)
        budget = int(self.cfg["words_per_batch"]) or auto.words_per_batch("cpu", "training")
        for batch in make_batches([len(x) for x in ids], budget):
            out = runner.forward(runner.pad([ids[i] for i in batch], [types[i] for i in batch]))
            for j, i in enumerate(batch):
                window_rows[i] = out.last_hidden_state[j, : len(ids[i])]
        per_doc: list[list[tuple[Window, torch.Tensor]]] = [[] for _ in docs]
        for w, (d, _s), r in zip(windows, owners, window_rows):
            assert r is not None
            per_doc[d].append((w, r))
        rows = []
        host: list[SequenceOutput | None] = []
        for wp, items in zip(wps, per_doc):
            rows.append(_stitch_torch(items, len(wp.ids), runner.width, runner.device))
            host.extend(
                SequenceOutput(last_hidden_state=r.detach().float().cpu().numpy())
                for _w, r in items
            )
        # Windows regrouped by doc are in planning order already (planned doc by doc).
        self._set_docs(docs, ModelInputs(windows, owners, wps, ids, types), host)
        for doc in docs:
            last = doc._.trf_outputs.last_hidden_state
            doc._.trf_d_last_hidden_state = np.zeros_like(last)
        return rows

    def receive_gradient(self, listener: str) -> None:
        """A listener has added its gradient to the docs' buffers; once all have, backprop
        into the parameters' gradients (and step, when ``finish_update`` came first)."""
        pending = self._pending
        if pending is None or listener not in pending.waiting_for:
            return
        pending.received.add(listener)
        if pending.received < pending.waiting_for:
            return
        self._backward(pending)
        if self._step_with is not None:
            sgd, self._step_with = self._step_with, None
            self._step(sgd)

    def _backward(self, pending: PendingBackward) -> None:
        self._pending = None
        factor = float(self.cfg["grad_factor"])
        tensors, grads = [], []
        for doc, rows in zip(pending.docs, pending.rows):
            if rows.shape[0] == 0 or not rows.requires_grad:
                continue
            d = doc._.trf_d_last_hidden_state
            if d is None:
                continue
            tensors.append(rows)
            grads.append(torch.from_numpy(d * factor).to(rows.device, rows.dtype))
            # The "loss" spaCy's own tok2vec reports: the squared size of what came back.
            pending.losses[self.name] = pending.losses.get(self.name, 0.0) + float((d * d).sum())
        if tensors:
            torch.autograd.backward(tensors, grads)

    def finish_update(self, sgd: Any = None) -> None:
        """Step with ``sgd`` (or the optimizer of its own). Called before the listeners have
        reported (``nlp.update``), it keeps the optimizer and the step comes with the last
        gradient; called after them (``spacy train``), it steps now."""
        optimizer = self.own_optimizer or sgd
        if optimizer is None or optimizer is False:
            return
        if self._pending is not None and not self._pending.received:
            self._step_with = optimizer
            return
        if self._pending is not None:  # some listeners never reported (frozen, excluded)
            self._backward(self._pending)
        self._step(optimizer)

    def _step(self, optimizer: Optimizer) -> None:
        model = self.runner.model
        clip_grad_norm(model.parameters(), float(self.cfg["grad_clip"]))
        if step_torch_params(model.named_parameters(), optimizer, self._param_key) and (
            optimizer is self.own_optimizer
        ):
            optimizer.step_schedules()

    def use_params(self, params: dict[Any, Any]) -> Iterator[None]:
        """The optimizer's averaged weights until resumed: a generator, as spaCy's
        ``Language.use_params`` drives it (it evaluates and saves checkpoints so)."""
        if self._runner is None:
            yield
            return
        with swapped_params(self.runner.model.named_parameters(), params, self._param_key):
            yield

    # --- serialization -------------------------------------------------------------------

    def save_hf(self, hf_dir: Path) -> None:
        runner = self.runner
        runner.save(hf_dir)
        # The tokenizer's settings (model_max_length) travel with the weights.
        src = runner.model_dir / "tokenizer_config.json"
        if src.exists():
            shutil.copy(src, hf_dir / "tokenizer_config.json")


def _doc_offsets(wps: list[DocWordpieces]) -> np.ndarray:
    """Where each doc's wordpiece rows start in the batch's array (and, last, its length)."""
    offsets = np.zeros(len(wps) + 1, dtype=np.int64)
    np.cumsum([len(wp.ids) for wp in wps], out=offsets[1:])
    return offsets


def _reduce_long(
    plan: PooledPlan, long: LongSentences, sums: np.ndarray, class_rows: np.ndarray
) -> list[int]:
    """Each long sentence's row sum and class-token row, from its windows' stitched rows,
    into ``sums`` and ``class_rows``; returns per doc its windowed wordpieces."""
    rows: list[np.ndarray | None] = [None] * len(long.windows)
    for batch, result in zip(long.batches, long.results):
        for k, out in zip(batch, result.result()):
            rows[k] = out.last_hidden_state
    windowed = [0] * len(plan.wordpieces)
    for g, group in groupby(range(len(long.windows)), key=long.sentences.__getitem__):
        ks = list(group)  # a sentence's windows, consecutive
        stitched = stitch([long.windows[k] for k in ks], [cast(np.ndarray, rows[k]) for k in ks])
        sums[g] = stitched.sum(axis=0)
        class_rows[g] = stitched[-1] if plan.class_last[g] else stitched[0]
        windowed[plan.owner(g)[0]] += len(stitched)
    return windowed


def _sentence_windows(owners: list[tuple[int, int]]) -> Iterator[tuple[int, int, int, int]]:
    """Per sentence, in planning order: (doc, sentence, first window, end of its windows)."""
    k, n = 0, len(owners)
    while k < n:
        j = k + 1
        while j < n and owners[j] == owners[k]:
            j += 1
        d, s = owners[k]
        yield d, s, k, j
        k = j


def _single_window(owners: list[tuple[int, int]]) -> list[bool]:
    """Per window: whether it is its sentence's only one (most are; longer sentences are cut
    into consecutive windows of the same owner)."""
    alone = [False] * len(owners)
    for _d, _s, k, j in _sentence_windows(owners):
        alone[k] = j == k + 1
    return alone


def _wordpieces(doc: Doc, component: str) -> DocWordpieces:
    wp = doc_pieces(doc)
    if wp is None:
        raise MissingWordpieces(
            f"{component} got a doc without wordpieces. Put trf_wordpiecer before it: "
            f"nlp.add_pipe('trf_wordpiecer', before='{component}')."
        )
    return wp


def _stitch_torch(
    items: list[tuple[Window, torch.Tensor]], n_rows: int, width: int, device: torch.device
) -> torch.Tensor:
    """``text.batching.stitch`` for rows that carry a graph, a whole doc at once."""
    if not items:
        return torch.zeros((n_rows, width), device=device)
    sentences: list[torch.Tensor] = []
    k = 0
    while k < len(items):
        s = items[k][0].sentence
        group = []
        while k < len(items) and items[k][0].sentence == s:
            group.append(items[k])
            k += 1
        if len(group) == 1:
            sentences.append(group[0][1])
            continue
        first = group[0][0]
        p, q = first.n_prefix, first.n_suffix
        parts = [torch.stack([r[:p] for _, r in group]).mean(0)]
        for w, r in group:
            parts.append(r[p + w.keep_start - w.start : p + w.keep_stop - w.start])
        if q:
            parts.append(torch.stack([r[len(r) - q :] for _, r in group]).mean(0))
        sentences.append(torch.cat(parts))
    out = torch.cat(sentences)
    assert out.shape[0] == n_rows
    return out


def _window_rows(wp: DocWordpieces, s: int, w: Window) -> Any:
    """The doc wordpiece indices that window ``w`` of sentence ``s`` feeds to the model."""
    sl = wp.sentence(s)
    p, q = w.n_prefix, w.n_suffix
    rows = np.arange(sl.start, sl.stop)
    if p + q == 0:
        return rows[w.start : w.stop]
    content = rows[p : len(rows) - q]
    return np.concatenate([rows[:p], content[w.start : w.stop], rows[len(rows) - q :]])


def _window_inputs(wp: DocWordpieces, s: int, w: Window) -> tuple[np.ndarray, np.ndarray | None]:
    rows = _window_rows(wp, s, w)
    return wp.ids[rows], None if wp.type_ids is None else wp.type_ids[rows]
