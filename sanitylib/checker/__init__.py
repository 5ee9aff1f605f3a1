"""Sanity-check your own model: :func:`check`, its report, and the ``sanitylib check`` command."""

from sanitylib.checker.run import DEFAULT_METHODS, CheckReport, check, prepare_model

__all__ = ["DEFAULT_METHODS", "CheckReport", "check", "prepare_model"]
