"""Figures: drawing only, from tables and maps the experiments computed."""
