"""Configuration-keyed on-disk cache for expensive results (checkpoints, maps, tables).

Every cache key is built here, by :func:`cache_key`, from three things:

- the *parts* a call site names (models, inputs, settings): models count by their identity (type,
  structure and weights, :func:`sanitylib.models.under_test.identity`) and the kind of device
  they are on, tensors and arrays by a
  SHA-256 of their bytes, dataclasses by their fields;
- a fingerprint of the *source code* that computed the entry: the import closure of the module
  that defines ``build`` (and of any further ``code=``), :mod:`sanitylib.infra.fingerprint`, so
  that fixing a method, or any helper it calls, invalidates the maps it produced;
- :data:`CACHE_VERSION`.

An entry is a payload (``torch.save`` of tensors and plain data, loaded with
``weights_only=True``; tables as Parquet files beside it; NumPy arrays stored as tensors) and a
JSON manifest with the key's parts and the SHA-256 of every file. Every file is written under a
temporary name and renamed, the manifest last: a payload without its manifest is a write that was
interrupted, rebuilt quietly; a stale or corrupt entry is reported and rebuilt, never used.
Nothing is unpickled beyond tensors and plain containers.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import uuid
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pandas as pd
import torch
from torch import nn

from sanitylib.infra.fingerprint import code_fingerprint, code_state

__all__ = ["CACHE_VERSION", "cache_dir", "cache_key", "cached", "fingerprint", "key_part"]

T = TypeVar("T")

#: Bump when a change outside the fingerprinted code makes earlier cache entries wrong.
CACHE_VERSION = 3


def cache_dir() -> Path:
    """The cache root: ``$SANITYLIB_CACHE`` or ``~/.cache/sanitylib``."""
    root = os.environ.get("SANITYLIB_CACHE") or Path.home() / ".cache" / "sanitylib"
    return Path(root)


def fingerprint(*items: torch.Tensor | np.ndarray) -> str:
    """SHA-256 (16 hex digits) of the shapes, dtypes and bytes of tensors or arrays."""
    digest = hashlib.sha256()
    for item in items:
        array = (item.detach().cpu().contiguous().numpy() if isinstance(item, torch.Tensor)
                 else np.ascontiguousarray(item))
        digest.update(f"{array.shape}{array.dtype}".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()[:16]


def key_part(value: Any) -> Any:
    """A JSON-ready stand-in for one part of a key: models by identity, tensors by fingerprint."""
    from sanitylib.infra.device import module_device
    from sanitylib.models.under_test import ModelUnderTest, identity

    if isinstance(value, (ModelUnderTest, nn.Module)):
        # the device kind too: what a model computes on a GPU differs from the CPU in rounding
        module = value.module if isinstance(value, ModelUnderTest) else value
        return {"model": identity(value), "device": module_device(module).type}
    if isinstance(value, (torch.Tensor, np.ndarray)):
        return {"tensor": fingerprint(value)}
    if isinstance(value, pd.DataFrame):
        return {"table": hashlib.sha256(pd.util.hash_pandas_object(value).values.tobytes())
                .hexdigest()[:16]}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return key_part(dataclasses.asdict(value))
    if isinstance(value, Mapping):
        return {str(k): key_part(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [key_part(v) for v in value]
    if isinstance(value, (np.generic,)):
        return value.item()
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    raise TypeError(f"cannot key a cache entry on {type(value).__name__}; pass tensors, arrays, "
                    "models, dataclasses or plain data")


def _state_part(value: Any) -> Any:
    """:func:`key_part` of what a user's callable carries; an object it cannot key counts by
    its type."""
    try:
        return key_part(value)
    except TypeError:
        return {"type": f"{type(value).__module__}.{type(value).__qualname__}"}


def cache_key(parts: Mapping[str, Any], code: Sequence[object],
              state: Sequence[object] = ()) -> tuple[str, dict[str, Any]]:
    """``(20-hex-digit key, the JSON-ready description it hashes)``; ``code`` is fingerprinted by
    :func:`sanitylib.infra.fingerprint.code_fingerprint`, and the callables in ``state`` add
    what they carry besides their code (:func:`sanitylib.infra.fingerprint.code_state`)."""
    described = {"parts": key_part(parts), "code": code_fingerprint(code),
                 "version": CACHE_VERSION}
    if state:
        described["state"] = [{k: _state_part(v) for k, v in code_state(c).items()}
                              for c in state]
    text = json.dumps(described, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:20], json.loads(text)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _encode(value: Any, frames: list[pd.DataFrame]) -> Any:
    """Tables become references to Parquet files, arrays become tensors: the rest must be data
    that ``torch.load(weights_only=True)`` accepts."""
    if isinstance(value, pd.DataFrame):
        frames.append(value)
        return {"__frame__": len(frames) - 1}
    if isinstance(value, np.ndarray):
        return {"__ndarray__": torch.from_numpy(np.array(value))}
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Mapping):
        return {k: _encode(v, frames) for k, v in value.items()}
    if isinstance(value, tuple):
        return tuple(_encode(v, frames) for v in value)
    if isinstance(value, list):
        return [_encode(v, frames) for v in value]
    return value


def _decode(value: Any, frames: Sequence[pd.DataFrame]) -> Any:
    if isinstance(value, dict):
        if set(value) == {"__frame__"}:
            return frames[value["__frame__"]]
        if set(value) == {"__ndarray__"}:
            return value["__ndarray__"].cpu().numpy()
        return {k: _decode(v, frames) for k, v in value.items()}
    if isinstance(value, tuple):
        return tuple(_decode(v, frames) for v in value)
    if isinstance(value, list):
        return [_decode(v, frames) for v in value]
    return value


def _files(folder: Path, key: str, n_frames: int) -> list[Path]:
    return [folder / f"{key}.pt"] + [folder / f"{key}.{i}.parquet" for i in range(n_frames)]


def cached(kind: str, parts: Mapping[str, Any], build: Callable[[], T], *,
           code: Sequence[object] = (), root: Path | None = None,
           key: tuple[str, dict[str, Any]] | None = None) -> T:
    """Return ``build()``'s result for ``parts`` and ``code``, from the cache when valid.

    Args:
        kind: the cache's sub-folder (``"models"``, ``"explanations"``, ``"scores"``, ...).
        parts: everything that determines the result besides the code (see :func:`key_part`).
        build: computes the result: tensors, arrays, tables and plain containers.
        code: further modules or functions whose source computes the result, beyond the
            import closure of ``build``'s module (a user's function passed to the library);
            what they carry (bound arguments, closure values) is keyed too.
        key: the key already made by :func:`cache_key` (by the process that asked for the
            entry, when another one builds it); ``parts`` and ``code`` are then not read.
    """
    folder = (root or cache_dir()) / kind
    key, described = key if key is not None else cache_key(parts, (build, *code), code)
    manifest = folder / f"{key}.json"
    # the manifest is written last: without it, a payload is an interrupted write, rebuilt quietly
    if manifest.exists():
        value, problem = _load(folder, key, manifest, described)
        if problem is None:
            return value
        warnings.warn(f"cache entry {kind}/{key} is {problem}; rebuilding it", stacklevel=2)
    value = build()
    folder.mkdir(parents=True, exist_ok=True)
    frames: list[pd.DataFrame] = []
    payload = _encode(value, frames)
    files = _files(folder, key, len(frames))
    suffix = f".{uuid.uuid4().hex}.tmp"  # concurrent writers (processes, threads) never collide
    torch.save(payload, files[0].with_name(files[0].name + suffix))
    for frame, path in zip(frames, files[1:]):
        frame.to_parquet(path.with_name(path.name + suffix))
    for path in files:
        path.with_name(path.name + suffix).replace(path)
    staged = manifest.with_name(manifest.name + suffix)  # the manifest last, also by a rename
    staged.write_text(json.dumps({"key": described, "frames": len(frames),
                                  "sha256": [_sha256(p) for p in files]}, indent=1))
    staged.replace(manifest)
    return value


def _load(folder: Path, key: str, manifest: Path, described: dict[str, Any]
          ) -> tuple[Any, str | None]:
    """``(value, None)`` for a valid entry, else ``(None, what is wrong with it)``."""
    try:
        meta = json.loads(manifest.read_text())
        files = _files(folder, key, int(meta["frames"]))
    except (json.JSONDecodeError, KeyError, TypeError, ValueError):
        return None, "carrying an unreadable manifest"
    if meta.get("key") != described:
        return None, "stale (built from another configuration or code)"
    if any(not p.exists() for p in files):
        return None, "missing part of its payload"
    if meta.get("sha256") != [_sha256(p) for p in files]:
        return None, "corrupt (checksum mismatch)"
    try:
        payload = torch.load(files[0], map_location="cpu", weights_only=True)
        frames = [pd.read_parquet(p) for p in files[1:]]
    except Exception as error:  # noqa: BLE001 - any unreadable payload is rebuilt
        return None, f"unreadable ({type(error).__name__})"
    return _decode(payload, frames), None
