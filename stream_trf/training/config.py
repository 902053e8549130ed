"""The spaCy training config of a text classifier on the transformer: what ``stream-trf
init-config`` writes, what ``python -m spacy train`` reads, and what ``stream-trf train`` builds
and runs through spaCy's own loop.

Every setting of ``stream-trf train`` is a line of it:

* the transformer's learning rate, warm-up and decay: ``[training.optimizer]`` (Thinc's Adam
  computed in torch, ``stream_trf.Adam.v1``; decoupled weight decay 0.01; Thinc's
  ``warmup_linear.v1`` schedule), which ``trf_tok2vec`` steps with; the head's own rate:
  ``[components.trf_textcat.optimizer]``;
* freezing / scaling the transformer's gradients: ``trf_tok2vec.grad_factor``;
* training on the head of each doc: ``[corpora.train.augmenter]``
  (``stream_trf.first_wordpieces.v1``) and ``trf_textcat.max_wordpieces``;
* class weights: ``trf_textcat.class_weighting``; probing the head first:
  ``[initialize.components.trf_textcat]``;
* epochs and batch size: ``[training]`` and ``[training.batcher]``.

spaCy's loop evaluates at step 0 and every ``eval_frequency`` steps after, so with
``eval_frequency`` one epoch of steps and ``max_steps`` the epochs' steps, the evaluations fall
after the first batch and after the first batch of each next epoch; the schedule's
``total_steps`` counts that last batch too.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

from thinc.api import Config

from ..model.source import DEFAULT_MODEL


@dataclass(frozen=True)
class Recipe:
    """The settings of a text-classification run (the defaults: the recipe measured best on
    the Debian sections within a 30-minute CPU budget; docs/training.md)."""

    model: str = DEFAULT_MODEL
    labels: tuple[str, ...] = ()  # empty: read from the training data at initialize
    exclusive: bool = True
    epochs: int = 3
    batch_size: int = 16
    learn_rate: float = 1e-4
    head_learn_rate: float = 1e-3
    warmup: float = 0.1  # share of the steps
    weight_decay: float = 0.01
    pooling: str = "doc_mean"
    max_wordpieces: int = 64
    probe_epochs: int = 10
    probe_learn_rate: float = 1e-2
    words_per_batch: int = 1000
    class_weighting: str = "sqrt"
    dropout: float = 0.1
    freeze: bool = False
    seed: int = 0
    lang: str = "en"

    def steps_per_epoch(self, n_train: int) -> int:
        return max(1, math.ceil(n_train / self.batch_size))


# Without the size of the training data, the schedule assumes this many steps per epoch.
UNSIZED_STEPS_PER_EPOCH = 500

_TEMPLATE = """
[paths]
train = null
dev = null

[system]
seed = {seed}
gpu_allocator = null

[nlp]
lang = "{lang}"
pipeline = ["sentencizer","trf_wordpiecer","trf_tok2vec","trf_textcat"]
batch_size = 64

[components]

[components.sentencizer]
factory = "sentencizer"

[components.trf_wordpiecer]
factory = "trf_wordpiecer"
model = {model}

[components.trf_tok2vec]
factory = "trf_tok2vec"
model = {model}
words_per_batch = {words_per_batch}
grad_factor = {grad_factor}
grad_clip = 1.0

[components.trf_textcat]
factory = "trf_textcat"
exclusive_classes = {exclusive}
pooling = "{pooling}"
max_wordpieces = {max_wordpieces}
class_weighting = "{class_weighting}"
dropout = {dropout}

[components.trf_textcat.model]
@architectures = "stream_trf.TransformerTextcatHead.v1"
nO = null

[components.trf_textcat.optimizer]
@optimizers = "Adam.v1"
learn_rate = {head_learn_rate}
L2 = 0.0
grad_clip = 1.0
use_averages = false

[corpora]

[corpora.train]
@readers = "spacy.Corpus.v1"
path = ${{paths.train}}

[corpora.train.augmenter]
@augmenters = "stream_trf.first_wordpieces.v1"

[corpora.dev]
@readers = "spacy.Corpus.v1"
path = ${{paths.dev}}

[training]
seed = ${{system.seed}}
gpu_allocator = ${{system.gpu_allocator}}
dropout = {dropout}
max_epochs = {max_epochs}
max_steps = {max_steps}
eval_frequency = {eval_frequency}
patience = 0
accumulate_gradient = 1
frozen_components = []
annotating_components = []
train_corpus = "corpora.train"
dev_corpus = "corpora.dev"
before_to_disk = null
before_update = null

[training.batcher]
@batchers = "spacy.batch_by_sequence.v1"
size = {batch_size}
get_length = null

[training.logger]
@loggers = "spacy.ConsoleLogger.v3"
progress_bar = "eval"

[training.optimizer]
@optimizers = "stream_trf.Adam.v1"
L2 = {weight_decay}
grad_clip = 1.0
use_averages = false

[training.optimizer.learn_rate]
@schedules = "warmup_linear.v1"
initial_rate = {learn_rate}
warmup_steps = {warmup_steps}
total_steps = {total_steps}

[training.score_weights]
cats_score = null
cats_macro_f = 1.0
cats_micro_f = null

[initialize]

[initialize.components]

[initialize.components.trf_textcat]
labels = {labels}
probe_epochs = {probe_epochs}
probe_learn_rate = {probe_learn_rate}
"""


def textcat_config(recipe: Recipe, n_train: int | None = None) -> Config:
    """The config for ``recipe``; with ``n_train`` (training examples) its schedule and
    evaluations are sized to the data, one evaluation per epoch."""
    spe = recipe.steps_per_epoch(n_train) if n_train else UNSIZED_STEPS_PER_EPOCH
    total = recipe.epochs * spe + 1
    # Sized: stop at the step that evaluates the last epoch. Unsized: after the epochs.
    max_epochs, max_steps = (
        (recipe.epochs + 1, recipe.epochs * spe) if n_train else (recipe.epochs, 0)
    )
    max_wordpieces = 0 if recipe.freeze else recipe.max_wordpieces
    text = _TEMPLATE.format(
        seed=recipe.seed,
        lang=recipe.lang,
        model=json.dumps(recipe.model),
        words_per_batch=recipe.words_per_batch,
        grad_factor=0.0 if recipe.freeze else 1.0,
        exclusive="true" if recipe.exclusive else "false",
        pooling=recipe.pooling,
        max_wordpieces=max_wordpieces,
        class_weighting=recipe.class_weighting,
        dropout=recipe.dropout,
        head_learn_rate=recipe.head_learn_rate,
        max_epochs=max_epochs,
        max_steps=max_steps,
        eval_frequency=spe,
        batch_size=recipe.batch_size,
        weight_decay=recipe.weight_decay,
        learn_rate=recipe.learn_rate,
        warmup_steps=int(recipe.warmup * total),
        total_steps=total,
        labels=json.dumps(list(recipe.labels)) if recipe.labels else "null",
        probe_epochs=0 if recipe.freeze else recipe.probe_epochs,
        probe_learn_rate=recipe.probe_learn_rate,
    )
    return Config().from_str(text, interpolate=False)
