"""The transformer on a device: padded sub-batches in, one array of rows per sequence out.

The runner knows nothing about docs or sentences; it gets sequences of ids and gives back their
rows, unpadded. Padding goes on the right with an attention mask, which leaves every real row as
the model computes it on the sequence alone. An out-of-memory error on a sub-batch is retried by
splitting it in halves.
"""

from __future__ import annotations

import inspect
import itertools
import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch

from ..errors import UnsupportedModel
from .gpu import resolve_device, to_host
from .packed import packed_forward, packed_forward_flat, supports_packing
from .pooling import pool_padded
from .precision import apply_precision
from .source import model_family
from .traced import TRACE_MODES, TracedEncoder, trace_encoder

log = logging.getLogger(__name__)

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float32]
_FALLBACK_MAX_LENGTH = 512
PACKINGS = ("auto", "on", "off")


@dataclass
class SequenceOutput:
    """The model's output for one sequence, unpadded (pooled outputs come from
    ``predict_pooled`` instead, as arrays for a whole sub-batch)."""

    last_hidden_state: FloatArray  # (length, width)
    hidden_states: list[FloatArray] | None = None  # per layer, embeddings first
    attentions: list[FloatArray] | None = None  # per layer: (heads, length, length)


@dataclass
class RunnerStats:
    batches: int = 0
    sequences: int = 0
    real_wordpieces: int = 0
    padded_wordpieces: int = 0
    oom_splits: int = 0

    def __post_init__(self) -> None:
        self._lock = threading.Lock()  # lanes (model/lanes.py) count from several threads

    def add(self, sequences: int, real: int, padded: int) -> None:
        with self._lock:
            self.batches += 1
            self.sequences += sequences
            self.real_wordpieces += real
            self.padded_wordpieces += padded


def _is_oom(err: BaseException) -> bool:
    oom_type = getattr(torch.cuda, "OutOfMemoryError", None)
    if oom_type is not None and isinstance(err, oom_type):
        return True
    return isinstance(err, RuntimeError) and "out of memory" in str(err).lower()


class TransformerRunner:
    """A Hugging Face encoder on one device."""

    def __init__(
        self,
        model_dir: Path,
        *,
        device: str = "auto",
        precision: str = "fp32",
        max_length: int | None = None,
        output_hidden_states: bool = False,
        output_attentions: bool = False,
        packing: str = "auto",
        trace: str = "auto",
    ) -> None:
        from transformers import AutoConfig, AutoModel
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # a worker's logs are no place for weight-loading bars

        self.model_dir = Path(model_dir)
        self.device = resolve_device(device)
        self.output_hidden_states = output_hidden_states
        self.output_attentions = output_attentions
        self.family = model_family(self.model_dir)
        try:
            config = AutoConfig.from_pretrained(str(model_dir), local_files_only=True)
            # Attention weights need the eager kernel; otherwise the fused one.
            attn = "eager" if output_attentions else "sdpa"
            try:
                model = AutoModel.from_pretrained(
                    str(model_dir), local_files_only=True, attn_implementation=attn
                )
            except (ValueError, ImportError):
                model = AutoModel.from_pretrained(str(model_dir), local_files_only=True)
        except (ValueError, KeyError, OSError) as err:
            raise UnsupportedModel(
                f"transformers could not load a model from {model_dir}: {err}"
            ) from err
        self.config = config
        self.precision = precision
        self.model: Any = apply_precision(model.to(self.device).eval(), precision, self.device)
        params = inspect.signature(self.model.forward).parameters
        self._accepts_types = "token_type_ids" in params
        self.pad_id = int(getattr(config, "pad_token_id", None) or 0)
        self.width = int(
            getattr(config, "hidden_size", None) or getattr(config, "d_model", None) or 0
        )
        self.max_length = max_length or self._default_max_length()
        self._packing, self._trace = packing, trace
        self.packed = self._choose_packing(packing)
        self.traced = self._choose_trace(trace)
        self.stats = RunnerStats()

    def use_model(self, model: torch.nn.Module, precision: str, *, trace: bool = True) -> None:
        """Run ``model`` (the same encoder, differently converted: e.g. another int8 scheme)
        from now on. Packing and the trace are chosen again for it, so no path keeps running
        the old weights; ``trace=False`` keeps it eager, which hooks on its modules (such as
        calibration) need."""
        self.model = model
        self.precision = precision
        self.packed = self._choose_packing(self._packing)
        self.traced = self._choose_trace(self._trace if trace else "off")

    def _choose_packing(self, packing: str) -> bool:
        """Padding-free inference (model/packed.py): ``auto`` uses it on CUDA, where the
        variable-length attention kernel makes it pay. On a CPU the packed path (attention
        padded inside, everything else packed) is on par with length-bucketed padding, which
        already wastes little, so ``auto`` keeps the plain model there; ``on`` forces it
        wherever the model allows."""
        if packing not in PACKINGS:
            raise ValueError(f"packing must be one of {PACKINGS}, got {packing!r}")
        if packing == "off" or self.output_attentions or self.precision == "int8":
            return False
        if not supports_packing(self.model):
            if packing == "on":
                log.warning("packing: %s has no packed path; padding instead", self.family)
            return False
        return packing == "on" or self.device.type == "cuda"

    def _choose_trace(self, trace: str) -> TracedEncoder | None:
        """Inference through a TorchScript trace (model/traced.py), which frees the GIL for the
        Python beside the lanes: ``auto`` traces on a CPU, ``on`` on any device, ``off`` never.
        Hidden states, attention weights and padding-free runs keep the eager model."""
        if trace not in TRACE_MODES:
            raise ValueError(f"trace must be one of {TRACE_MODES}, got {trace!r}")
        if trace == "off" or (trace == "auto" and self.device.type != "cpu"):
            return None
        if self.packed or self.output_hidden_states or self.output_attentions:
            return None
        return trace_encoder(
            self.model,
            vocab_size=int(getattr(self.config, "vocab_size", 0) or 2),
            pad_id=self.pad_id,
            with_types=self._accepts_types,
            device=self.device,
        )

    def _default_max_length(self) -> int:
        """The longest sequence the model takes: the tokenizer's ``model_max_length`` when
        saved next to the model, bounded by the position table."""
        candidates = []
        tok_cfg = self.model_dir / "tokenizer_config.json"
        if tok_cfg.exists():
            import json

            mml = json.loads(tok_cfg.read_text()).get("model_max_length")
            if isinstance(mml, (int, float)) and 0 < mml < 100_000:
                candidates.append(int(mml))
        mpe = getattr(self.config, "max_position_embeddings", None)
        if isinstance(mpe, int) and mpe > 0:
            candidates.append(mpe)
        return min(candidates) if candidates else _FALLBACK_MAX_LENGTH

    @property
    def name(self) -> str:
        return str(getattr(self.config, "_name_or_path", "") or self.model_dir.name)

    def pad(
        self, ids: Sequence[IntArray], type_ids: Sequence[IntArray | None]
    ) -> dict[str, torch.Tensor]:
        """Right-padded model inputs for sequences of different lengths."""
        n = len(ids)
        lengths = np.fromiter(map(len, ids), dtype=np.int64, count=n)
        longest = int(lengths.max())
        # one scatter for the whole sub-batch: (row, column) of every real position
        mask_bool = np.arange(longest)[None, :] < lengths[:, None]
        input_ids = np.full((n, longest), self.pad_id, dtype=np.int64)
        input_ids[mask_bool] = np.concatenate(ids)
        mask = mask_bool.astype(np.int64)
        types = np.zeros((n, longest), dtype=np.int64)
        if any(t is not None for t in type_ids):
            types[mask_bool] = np.concatenate(
                [t if t is not None else np.zeros(len(x), np.int64) for x, t in zip(ids, type_ids)]
            )
        inputs = {
            "input_ids": torch.from_numpy(input_ids).to(self.device),
            "attention_mask": torch.from_numpy(mask).to(self.device),
        }
        if self._accepts_types and any(t is not None for t in type_ids):
            inputs["token_type_ids"] = torch.from_numpy(types).to(self.device)
        return inputs

    def forward(self, inputs: dict[str, torch.Tensor]) -> Any:
        """The model on padded inputs, with gradients if the caller enables them."""
        return self.model(
            **inputs,
            output_hidden_states=self.output_hidden_states,
            output_attentions=self.output_attentions,
            return_dict=True,
        )

    def infer(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        """The last hidden state of padded inputs, no gradients: through the trace when there
        is one (model/traced.py), else the eager model."""
        if self.traced is not None:
            return self.traced(inputs)
        last: torch.Tensor = self.forward(inputs).last_hidden_state
        return last

    def predict(
        self,
        ids: Sequence[IntArray],
        type_ids: Sequence[IntArray | None],
        into: Sequence[FloatArray | None] | None = None,
    ) -> list[SequenceOutput]:
        """Run one sub-batch without gradients; split it in halves on out-of-memory.

        ``into[i]``, where given, is where sequence ``i``'s last hidden state goes (a slice of
        the caller's array for the whole batch of docs): the lane writes it there and returns
        it as that output, so no per-sequence copy is made and later gathered again."""
        if not ids:
            return []
        try:
            with torch.inference_mode():
                if self.packed:
                    return self._predict_packed(ids, type_ids)
                inputs = self.pad(ids, type_ids)
                if self.traced is not None:
                    return self._unpad_rows(self.infer(inputs), [len(x) for x in ids], into)
                out = self.forward(inputs)
                return self._unpad(out, [len(x) for x in ids], into)
        except Exception as err:
            self._split_after(err, len(ids))
            half = len(ids) // 2

            def part(xs: Sequence[Any] | None, a: int, b: int | None) -> Any:
                return xs[a:b] if xs is not None else None

            return self.predict(ids[:half], type_ids[:half], part(into, 0, half)) + self.predict(
                ids[half:], type_ids[half:], part(into, half, None)
            )

    def _split_after(self, err: Exception, n: int) -> None:
        """Re-raise ``err`` unless it is an out-of-memory error on more than one sequence;
        otherwise count it and free the device's cache: the caller retries in two halves."""
        if not _is_oom(err) or n == 1:
            raise err
        self.stats.oom_splits += 1
        log.warning("out of memory on %d sequences: retrying in two halves", n)
        if self.device.type == "cuda":
            torch.cuda.empty_cache()

    def predict_pooled(
        self,
        ids: IntArray,
        type_ids: IntArray | None,
        starts: IntArray,
        lengths: IntArray,
    ) -> tuple[FloatArray, FloatArray, FloatArray]:
        """One sub-batch (padded, or packed where this runner packs) reduced to what pooled
        outputs need, for sequences given as ``(start, length)`` pairs into one flat array of
        ids: each sequence's row sum (for means), first row and last row (where class tokens
        sit), as three ``(n, width)`` arrays, reduced where the model ran (on a GPU only those
        cross to the host). No per-sequence object on the way in or out. Splits in halves on
        out-of-memory."""
        if len(lengths) == 0:
            empty = np.zeros((0, self.width), dtype=np.float32)
            return empty, empty, empty
        try:
            with torch.inference_mode():
                if self.packed:
                    # the sequences end to end, gathered in one indexing
                    where = np.repeat(starts - (np.cumsum(lengths) - lengths), lengths) + (
                        np.arange(int(lengths.sum()))
                    )
                    types = (
                        type_ids[where]
                        if type_ids is not None
                        else np.zeros(len(where), dtype=np.int64)
                    )
                    packed_t, _ = packed_forward_flat(
                        self.model, ids[where], types, lengths.tolist(), self.device
                    )
                    total = int(lengths.sum())
                    self.stats.add(len(lengths), total, total)
                    return _pooled_packed_arrays(packed_t, lengths)
                longest = int(lengths.max())
                steps = np.arange(longest)
                mask = steps[None, :] < lengths[:, None]
                # every position's place in ``ids``, clamped into its own sequence
                where = starts[:, None] + np.minimum(steps[None, :], lengths[:, None] - 1)
                inputs = {
                    "input_ids": torch.from_numpy(np.where(mask, ids[where], self.pad_id)).to(
                        self.device
                    ),
                    "attention_mask": torch.from_numpy(mask.astype(np.int64)).to(self.device),
                }
                if self._accepts_types and type_ids is not None:
                    inputs["token_type_ids"] = torch.from_numpy(
                        np.where(mask, type_ids[where], 0)
                    ).to(self.device)
                reduced = self.traced.pooled(inputs) if self.traced is not None else None
                if reduced is None:
                    pooled = _pooled_arrays(self.infer(inputs), lengths)
                else:  # reduced inside the trace (model/traced.py)
                    pooled = (to_host(reduced[0]), to_host(reduced[1]), to_host(reduced[2]))
                self.stats.add(len(lengths), int(lengths.sum()), len(lengths) * longest)
                return pooled
        except Exception as err:
            self._split_after(err, len(lengths))
            half = len(lengths) // 2
            a = self.predict_pooled(ids, type_ids, starts[:half], lengths[:half])
            b = self.predict_pooled(ids, type_ids, starts[half:], lengths[half:])
            return (
                np.concatenate([a[0], b[0]]),
                np.concatenate([a[1], b[1]]),
                np.concatenate([a[2], b[2]]),
            )

    def _predict_packed(
        self, ids: Sequence[IntArray], type_ids: Sequence[IntArray | None]
    ) -> list[SequenceOutput]:
        last_t, states_t, lengths = packed_forward(
            self.model,
            ids,
            type_ids,
            self.device,
            output_hidden_states=self.output_hidden_states,
        )
        total = int(sum(lengths))
        self.stats.add(len(lengths), total, total)
        last = to_host(last_t)
        states = [to_host(h) for h in states_t] if states_t is not None else None
        bounds = np.concatenate([[0], np.cumsum(lengths)]).tolist()
        results = []
        for a, b in itertools.pairwise(bounds):
            results.append(
                SequenceOutput(
                    last_hidden_state=last[a:b],
                    hidden_states=[h[a:b] for h in states] if states is not None else None,
                )
            )
        return results

    def _unpad(
        self,
        out: Any,
        lengths: list[int],
        into: Sequence[FloatArray | None] | None = None,
    ) -> list[SequenceOutput]:
        return self._unpad_rows(
            out.last_hidden_state, lengths, into, out.hidden_states, out.attentions
        )

    def _unpad_rows(
        self,
        last_t: torch.Tensor,
        lengths: list[int],
        into: Sequence[FloatArray | None] | None = None,
        hidden_t: Sequence[torch.Tensor] | None = None,
        attn_t: Sequence[torch.Tensor] | None = None,
    ) -> list[SequenceOutput]:
        last = to_host(last_t)
        hidden = [to_host(h) for h in hidden_t] if hidden_t is not None else None
        attn = [to_host(a) for a in attn_t] if attn_t is not None else None
        self.stats.add(len(lengths), sum(lengths), len(lengths) * last_t.shape[1])
        results = []
        for i, n in enumerate(lengths):
            dest = into[i] if into is not None else None
            if dest is not None:
                dest[...] = last[i, :n]
            results.append(
                SequenceOutput(
                    last_hidden_state=dest
                    if dest is not None
                    else np.ascontiguousarray(last[i, :n]),
                    hidden_states=[np.ascontiguousarray(h[i, :n]) for h in hidden]
                    if hidden is not None
                    else None,
                    attentions=[np.ascontiguousarray(a[i, :, :n, :n]) for a in attn]
                    if attn is not None
                    else None,
                )
            )
        return results

    def save(self, path: Path) -> None:
        """The weights as fp32 Hugging Face files. Lower precisions are inference-only, so their
        weights are still the source directory's: those are saved, not the converted ones."""
        if self.precision == "fp32":
            self.model.save_pretrained(str(path))
            return
        from transformers import AutoModel

        AutoModel.from_pretrained(str(self.model_dir), local_files_only=True).save_pretrained(
            str(path)
        )


def _float(t: torch.Tensor) -> torch.Tensor:
    """Half-precision rows summed in float32 (a sum of hundreds of fp16 rows loses digits)."""
    return t.float() if t.dtype in (torch.float16, torch.bfloat16) else t


def _pooled_arrays(
    last_t: torch.Tensor, lengths: Sequence[int] | IntArray
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Padded sequences' row sums, first rows and last rows (``pool_padded``), on the host."""
    n = torch.as_tensor(np.asarray(lengths), device=last_t.device)
    mask = torch.arange(last_t.shape[1], device=last_t.device)[None, :] < n[:, None]
    sums, first, final = pool_padded(last_t, mask)
    return to_host(sums), to_host(first), to_host(final)


def _pooled_packed_arrays(
    last_t: torch.Tensor, lengths: Sequence[int] | IntArray
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """:func:`_pooled_arrays` for packed rows (all sequences end to end, no padding)."""
    x = _float(last_t)
    n = torch.as_tensor(np.asarray(lengths), device=x.device)
    ends = torch.cumsum(n, 0)
    owner = torch.repeat_interleave(torch.arange(len(n), device=x.device), n)
    sums_t = torch.zeros((len(n), x.shape[1]), dtype=x.dtype, device=x.device)
    sums = to_host(sums_t.index_add_(0, owner, x))
    first = to_host(x[ends - n])
    final = to_host(x[ends - 1])
    return sums, first, final
