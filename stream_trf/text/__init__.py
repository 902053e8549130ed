"""Pure text-side functions: wordpieces, alignment, batching shapes. No spaCy, no torch."""
