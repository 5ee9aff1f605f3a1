"""Experiments: the runner shared by images and text, and one module per chapter (tidy tables)."""
