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

__all__ = ["CHANNELS_LAST", "DEVICE_KINDS", "default_device", "in_fastest_format", "module_device",
           "randn", "resolve_device"]

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


#: (network, device kind) pairs whose forward + backward passes run faster in ``channels_last``
#: (``make bench``, benchmarks/explain_throughput.py, both formats in the same run). On this
#: project's 2-core CPU, rows/s default -> channels_last: EfficientNet-Lite0 18 -> 25 in passes
#: of 8-16 rows of 224 x 224, Inception v3 4.1 -> 4.8 in passes of 7 rows of 299 x 299. CUDA is
#: not listed: it has not been measured here. The MNIST CNN (1,620 -> 1,860 rows/s) stays in the
#: default format so that the book's MNIST numbers do not move.
CHANNELS_LAST = frozenset({("efficientnet_lite0", "cpu"), ("inception_v3", "cpu")})


def in_fastest_format(module: nn.Module, name: str) -> nn.Module:
    """``module`` (in place) in ``channels_last`` where :data:`CHANNELS_LAST` lists its network
    ``name`` on its device kind; otherwise unchanged. The maps agree with the default format's to
    float32 rounding (tests/test_memory_format.py)."""
    if (name, module_device(module).type) in CHANNELS_LAST:
        module.to(memory_format=torch.channels_last)
    return module
