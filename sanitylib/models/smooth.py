"""Smoother networks: Softplus for ReLU and LogSumExp pooling for max pooling.

Kokhlikyan et al. (2021, arXiv 2106.07475), Section 3: a smoother network function gives lower
infidelity. PyTorch has no LogSumExp pooling layer, hence :class:`LogSumExpPool2d`.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from sanitylib.models.inception import with_module_relus

__all__ = ["LogSumExpPool2d", "smooth"]


class LogSumExpPool2d(nn.Module):
    """LogSumExp pooling, a smooth stand-in for max pooling (Kokhlikyan et al., 2021, Section 3).

    Each window of ``n`` values becomes ``log(mean(exp(t * x))) / t`` for temperature ``t``: it
    lies between ``max - log(n) / t`` and ``max``, so it tends to max pooling as ``t`` grows and to
    average pooling as ``t`` tends to 0. PyTorch has no such layer, hence this module; padding is
    by ``-inf``, as max pooling pads, and padded positions count in ``n``.
    """

    def __init__(self, kernel_size: int | tuple[int, int], stride: int | tuple[int, int] | None = None,
                 padding: int | tuple[int, int] = 0, temperature: float = 10.0) -> None:
        super().__init__()
        if temperature <= 0:
            raise ValueError(f"temperature must be positive, got {temperature}")
        pair = nn.modules.utils._pair
        self.kernel_size = pair(kernel_size)
        self.stride = pair(stride if stride is not None else kernel_size)
        self.padding = pair(padding)
        self.temperature = float(temperature)

    @classmethod
    def from_max_pool(cls, pool: nn.MaxPool2d, temperature: float) -> LogSumExpPool2d:
        """The LogSumExp counterpart of a ``MaxPool2d`` (same window, stride and padding)."""
        pair = nn.modules.utils._pair
        if pair(pool.dilation) != (1, 1) or pool.ceil_mode or pool.return_indices:
            raise ValueError("only MaxPool2d without dilation, ceil_mode or return_indices can be "
                             f"replaced; got {pool}")
        return cls(pool.kernel_size, pool.stride, pool.padding, temperature)

    def extra_repr(self) -> str:
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
                f"temperature={self.temperature}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, channels, height, width = x.shape
        (kh, kw), (sh, sw), (ph, pw) = self.kernel_size, self.stride, self.padding
        if ph or pw:
            x = nn.functional.pad(x, (pw, pw, ph, ph), value=float("-inf"))
        windows = nn.functional.unfold(self.temperature * x, (kh, kw), stride=(sh, sw))
        windows = windows.view(batch, channels, kh * kw, -1)
        pooled = (torch.logsumexp(windows, dim=2) - math.log(kh * kw)) / self.temperature
        out_h = (height + 2 * ph - kh) // sh + 1
        out_w = (width + 2 * pw - kw) // sw + 1
        return pooled.view(batch, channels, out_h, out_w)


def smooth(model: nn.Module, beta: float = 10.0, temperature: float | None = None, *,
           activations: bool = True, pooling: bool = True) -> nn.Module:
    """A copy of ``model`` with ReLU replaced by Softplus and MaxPool by LogSumExp pooling.

    Kokhlikyan et al. (2021), Section 3: a smoother network function gives lower infidelity.
    ``beta`` is Softplus' sharpness, ``log(1 + exp(beta x)) / beta`` (ReLU as beta grows);
    ``temperature`` that of :class:`LogSumExpPool2d` (default: ``beta``). ``activations`` and
    ``pooling`` choose which of the two replacements to make. Parameter names, block paths and
    the ``architecture`` attribute stay as they were, so trained state dicts load and
    :func:`sanitylib.randomization.randomize` works on the copy; ``model`` itself is unchanged.
    torchvision's Inception v3 first gets module ReLUs (:func:`with_module_relus`); its
    functional max pools inside Mixed_6a and Mixed_7a cannot be swapped and stay max pools.
    """
    if beta <= 0:
        raise ValueError(f"beta must be positive, got {beta}")
    temperature = beta if temperature is None else temperature
    smoothed = with_module_relus(model)  # a deep copy
    for parent in list(smoothed.modules()):
        for name, child in list(parent.named_children()):
            if activations and isinstance(child, nn.ReLU):
                setattr(parent, name, nn.Softplus(beta=beta))
            elif pooling and isinstance(child, nn.MaxPool2d):
                setattr(parent, name, LogSumExpPool2d.from_max_pool(child, temperature))
    return smoothed
