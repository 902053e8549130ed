"""spaCy components (factories registered through entry points) and the doc._.trf_* attributes."""

from .extensions import DocWordpieces, TransformerOutputs
from .tok2vec import TransformerTok2Vec
from .wordpiecer import TransformerWordpiecer

__all__ = ["DocWordpieces", "TransformerOutputs", "TransformerTok2Vec", "TransformerWordpiecer"]
