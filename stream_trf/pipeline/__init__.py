"""spaCy components (factories registered through entry points) and the doc._.trf_* attributes."""

from .extensions import DocWordpieces, TransformerOutputs
from .textcat import TransformerTextCat
from .tok2vec import TransformerTok2Vec
from .wordpiecer import TransformerWordpiecer

__all__ = [
    "DocWordpieces",
    "TransformerOutputs",
    "TransformerTextCat",
    "TransformerTok2Vec",
    "TransformerWordpiecer",
]
