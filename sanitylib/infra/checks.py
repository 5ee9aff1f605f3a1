"""Recorded checks for notebooks: key numbers compared with expected values and tolerances.

The notebook tests (nbval) re-run every chapter with its smoke defaults; a check cell prints one
stable line per number and raises when a number leaves its tolerance, in the style of the
``recommenders`` project's notebook tests.
"""

from __future__ import annotations

import math

__all__ = ["expect", "expect_within"]


def expect(name: str, value: float, expected: float, tolerance: float) -> None:
    """Print ``name ≈ expected ± tolerance: ok``; raise AssertionError with the value otherwise."""
    if not (math.isfinite(value) and abs(value - expected) <= tolerance):
        raise AssertionError(f"{name} = {value:.4f}, expected {expected} ± {tolerance}")
    print(f"{name} ≈ {expected} ± {tolerance}: ok")


def expect_within(name: str, value: float, low: float, high: float) -> None:
    """Print ``name in [low, high]: ok``; raise AssertionError with the value otherwise."""
    if not (math.isfinite(value) and low <= value <= high):
        raise AssertionError(f"{name} = {value:.4f}, expected within [{low}, {high}]")
    print(f"{name} in [{low}, {high}]: ok")
