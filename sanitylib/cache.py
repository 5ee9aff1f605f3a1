"""Configuration-keyed on-disk cache for expensive results (checkpoints, maps, tables).

Every entry is a payload file plus a JSON manifest holding the configuration it was built from and
the payload's SHA-256. An entry whose manifest is missing, whose configuration differs (a hash
collision or a hand-edited file) or whose payload fails the checksum is reported and rebuilt,
never used.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import torch

T = TypeVar("T")

#: Bump when a change to the library makes earlier cache entries wrong.
CACHE_VERSION = 1


def cache_dir() -> Path:
    """The cache root: ``$SANITYLIB_CACHE`` or ``~/.cache/sanitylib``."""
    root = os.environ.get("SANITYLIB_CACHE") or Path.home() / ".cache" / "sanitylib"
    return Path(root)


def results_dir(chapter: str | None = None) -> Path:
    """Where chapters write their tidy CSV files: ``$SANITYLIB_RESULTS`` or ``./results``."""
    root = Path(os.environ.get("SANITYLIB_RESULTS") or "results")
    path = root / chapter if chapter else root
    path.mkdir(parents=True, exist_ok=True)
    return path


def config_key(config: dict[str, Any]) -> str:
    """A stable 20-hex-digit key for a JSON-serialisable configuration."""
    text = json.dumps({"config": config, "version": CACHE_VERSION}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _normalised(config: dict[str, Any]) -> Any:
    return json.loads(json.dumps(config, sort_keys=True, default=str))


def cached(kind: str, config: dict[str, Any], build: Callable[[], T],
           root: Path | None = None) -> T:
    """Return ``build()``'s result for ``config``, from the cache when a valid entry exists.

    The payload is stored with :func:`torch.save` (tensors, state dicts, arrays, plain data).
    A stale or corrupt entry triggers a warning and a rebuild.
    """
    folder = (root or cache_dir()) / kind
    key = config_key(config)
    payload, manifest = folder / f"{key}.pt", folder / f"{key}.json"
    if payload.exists() or manifest.exists():
        problem = _check_entry(payload, manifest, config)
        if problem is None:
            return torch.load(payload, map_location="cpu", weights_only=False)
        warnings.warn(f"cache entry {kind}/{key} is {problem}; rebuilding it", stacklevel=2)
    value = build()
    folder.mkdir(parents=True, exist_ok=True)
    tmp = payload.with_suffix(f".{os.getpid()}.tmp")  # concurrent writers never collide
    torch.save(value, tmp)
    tmp.replace(payload)
    manifest.write_text(json.dumps({"config": _normalised(config), "sha256": _sha256(payload),
                                    "version": CACHE_VERSION}, indent=1, sort_keys=True))
    return value


def _check_entry(payload: Path, manifest: Path, config: dict[str, Any]) -> str | None:
    """None when the entry is valid, else a short description of what is wrong with it."""
    if not payload.exists():
        return "missing its payload"
    if not manifest.exists():
        return "missing its manifest"
    try:
        meta = json.loads(manifest.read_text())
    except json.JSONDecodeError:
        return "carrying an unreadable manifest"
    if meta.get("config") != _normalised(config) or meta.get("version") != CACHE_VERSION:
        return "stale (built from another configuration)"
    if meta.get("sha256") != _sha256(payload):
        return "corrupt (checksum mismatch)"
    return None
