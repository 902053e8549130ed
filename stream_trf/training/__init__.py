"""Training, evaluating and packaging text classifiers on the transformer."""
