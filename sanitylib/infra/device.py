"""Which device the work runs on, and the rules that keep numbers the same on every device.

- The device is chosen once: ``$SANITYLIB_DEVICE`` (``make book DEVICE=cuda`` sets it), else CUDA
  when it exists, else the CPU (:func:`default_device`).
- Every library function follows the *model's* device (:func:`module_device`): inputs, targets,
  baselines and interpolation weights are moved to it; results come back on the caller's device
  (the inputs'), and NumPy arrays always through ``.cpu()``.
- Every random draw (noise, re-initialized weights, permutations) is made by a seeded CPU
  generator and then moved (:func:`randn`), so a seed gives the same numbers on every device.
  What then differs between devices is floating-point summation order only.
"""

from __future__ import annotations

import os

import torch
from torch import nn

__all__ = ["DEVICE_KINDS", "default_device", "module_device", "randn", "resolve_device"]

#: Device kinds a user may name (with an index where the kind has several: ``cuda:1``).
DEVICE_KINDS = ("cpu", "cuda", "mps")


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """``device`` checked against what this machine has; None gives :func:`default_device`."""
    if device is None:
        return default_device()
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as error:
        raise ValueError(f"unknown device {device!r}; valid choices: "
                         f"{', '.join(DEVICE_KINDS)} (with an index, e.g. cuda:1)") from error
    if resolved.type not in DEVICE_KINDS:
        raise ValueError(f"unknown device {device!r}; valid choices: {', '.join(DEVICE_KINDS)}")
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} asked for, but this machine has no CUDA device; "
                         "valid choices here: cpu")
    if resolved.type == "cuda" and (resolved.index or 0) >= torch.cuda.device_count():
        raise ValueError(f"device {device!r} asked for, but this machine has "
                         f"{torch.cuda.device_count()} CUDA device(s)")
    if resolved.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"device {device!r} asked for, but MPS is not available here")
    return resolved


def default_device() -> torch.device:
    """``$SANITYLIB_DEVICE`` when set (checked), else ``cuda`` when available, else ``cpu``."""
    named = os.environ.get("SANITYLIB_DEVICE", "").strip()
    if named:
        return resolve_device(named)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def module_device(module: nn.Module) -> torch.device:
    """The device of a module's first parameter or buffer (the CPU for a module with neither)."""
    for tensor in module.parameters():
        return tensor.device
    for tensor in module.buffers():
        return tensor.device
    return torch.device("cpu")


def randn(shape: tuple[int, ...], seed: int, *, dtype: torch.dtype = torch.float32,
          device: torch.device | str = "cpu") -> torch.Tensor:
    """Standard normal draws from a CPU generator seeded ``seed``, moved to ``device``."""
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=generator, dtype=dtype).to(device)
