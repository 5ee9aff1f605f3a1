"""Shared fixtures: an isolated cache and offline data sources for every test."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("SANITYLIB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("SANITYLIB_RESULTS", str(tmp_path / "results"))
    monkeypatch.setenv("SANITYLIB_OFFLINE", "1")
    monkeypatch.delenv("SANITYLIB_DATA", raising=False)
    monkeypatch.delenv("SANITYLIB_INCEPTION_WEIGHTS", raising=False)
    torch.manual_seed(0)
