"""The transformer itself: where it comes from, which device, how it runs."""
