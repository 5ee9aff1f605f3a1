"""Why saliency maps look like edges: Adebayo et al. (2018), Section 5.

- **Linear model** ``f(x) = W x``: the gradient of logit ``c`` is the weight row ``w_c``, whatever
  the input, so Gradient ⊙ Input is ``w_c ⊙ x`` and carries the input's structure for any ``w``.
- **One-layer conv net** with ReLU and pooling: the gradient at a pixel sums the filters whose
  ReLU is active over the patches covering it. In a uniform region every patch has the same
  activation pattern, so the gradient there is constant; it changes where the pattern changes,
  at edges. Random filters are enough (Section 5.2, Fig. 6).
- **The input dominates Gradient ⊙ Input** (Section 5.1, Fig. 5d): the rank correlation between
  ``x ⊙ g`` and ``x`` as ever more noise is added to ``g``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn

from sanitylib.infra.cache import cached
from sanitylib.methods import similarity
from sanitylib.methods.edges import SOBEL_X, sobel
from sanitylib.methods.similarity import compare

FILTERS = ("random", "sobel")
POOLS = ("max", "sum")


def linear_model(in_shape: tuple[int, ...] = (1, 28, 28), num_classes: int = 10,
                 seed: int = 0) -> nn.Module:
    """``x -> W x`` with standard normal weights and no bias (seeded)."""
    generator = torch.Generator().manual_seed(seed)
    layer = nn.Linear(int(np.prod(in_shape)), num_classes, bias=False)
    with torch.no_grad():
        layer.weight.copy_(torch.randn(layer.weight.shape, generator=generator))
    return nn.Sequential(nn.Flatten(), layer).eval()


class OneLayerConvNet(nn.Module):
    """conv -> ReLU -> pooling -> linear read-out to class logits (Section 5.2).

    ``pool="max"``: 2x2 max pooling, then the sum over positions; ``pool="sum"``: the sum over
    positions (global sum pooling). The conv layer is named ``conv`` (GradCAM's layer) and the
    ReLU is a module, so Guided Backprop can hook it.
    """

    def __init__(self, conv: nn.Conv2d, readout: nn.Linear, pool: str = "max") -> None:
        super().__init__()
        if pool not in POOLS:
            raise ValueError(f"unknown pool {pool!r}; valid choices: {', '.join(POOLS)}")
        self.conv, self.relu, self.readout = conv, nn.ReLU(), readout
        self.pool = nn.MaxPool2d(2) if pool == "max" else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.readout(self.pool(self.relu(self.conv(x))).sum(dim=(2, 3)))


def one_layer_conv(in_channels: int = 1, filters: str = "random", n_filters: int = 16,
                   kernel_size: int = 5, pool: str = "max", num_classes: int = 10,
                   seed: int = 0) -> OneLayerConvNet:
    """A one-layer conv net, never trained.

    ``filters="random"``: PyTorch's default (Kaiming-uniform) conv weights and biases, drawn
    with ``seed``; ``"sobel"``: the four Sobel filters +gx, -gx, +gy, -gy (3x3, applied to the
    channel mean, no bias), a conv layer set to an edge detector as the reviewers asked. The
    read-out is random either way.
    """
    if filters not in FILTERS:
        raise ValueError(f"unknown filters {filters!r}; valid choices: {', '.join(FILTERS)}")
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        if filters == "random":
            conv = nn.Conv2d(in_channels, n_filters, kernel_size, padding=kernel_size // 2)
        else:
            conv = nn.Conv2d(in_channels, 4, 3, padding=1, bias=False)
            kernels = torch.stack([SOBEL_X, -SOBEL_X, SOBEL_X.T, -SOBEL_X.T])[:, None]
            with torch.no_grad():
                conv.weight.copy_(kernels.expand(-1, in_channels, -1, -1) / in_channels)
        readout = nn.Linear(conv.out_channels, num_classes)
    return OneLayerConvNet(conv, readout, pool).eval()


def change_map(maps: torch.Tensor | np.ndarray) -> np.ndarray:
    """Where a map changes: scikit-image's Sobel magnitude of the map summed over channels
    (signed), (B, 1, H, W).

    Section 5.2 predicts that a one-layer conv net's gradient is flat inside uniform regions and
    changes at the input's edges, so this map, not the gradient's magnitude, should match the
    input's edge map.
    """
    summed = maps.sum(1, keepdims=True) if isinstance(maps, np.ndarray) else \
        maps.detach().sum(1, keepdim=True)
    return sobel(summed)


def _rms(g: torch.Tensor) -> torch.Tensor:
    """Root mean square of each map, shaped to broadcast over (B, ...)."""
    return g.flatten(1).pow(2).mean(1).sqrt().view(-1, *[1] * (g.ndim - 1))


def input_dominance(inputs: torch.Tensor, gradients: torch.Tensor,
                    noise_levels: Sequence[float],
                    metrics: Sequence[str] = ("spearman_abs", "spearman"), seed: int = 0,
                    labels: Mapping[str, object] | None = None) -> pd.DataFrame:
    """How much of ``x ⊙ g`` is ``x``: the paper's Fig. 5d.

    For each noise level ``s`` the gradient becomes ``g + s * rms(g) * eta`` (``eta`` standard
    normal, one draw per image, the same draw at every level; ``rms`` per image), so ``s`` is the
    noise-to-gradient ratio and large ``s`` tends to a pure-noise "gradient". Each row scores
    ``x ⊙ g_s`` (``map = "x ⊙ g"``) and ``g_s`` alone (``map = "g"``) against ``x``.
    """
    if inputs.shape != gradients.shape:
        raise ValueError(f"inputs {tuple(inputs.shape)} and gradients {tuple(gradients.shape)} "
                         "must have one shape")
    scale = _rms(gradients)
    if (scale == 0).any():
        raise ValueError("a gradient is zero everywhere; the noise level relative to it is "
                         "undefined")

    def build() -> pd.DataFrame:
        generator = torch.Generator().manual_seed(seed)
        eta = torch.randn(gradients.shape, generator=generator,
                          dtype=gradients.dtype).to(gradients.device)
        rows = []
        for level in noise_levels:
            noisy = gradients + level * scale * eta
            for name, m in (("x ⊙ g", inputs * noisy), ("g", noisy)):
                for metric in metrics:
                    values = compare(m, inputs, metric)
                    rows.append(pd.DataFrame({**(labels or {}), "noise": float(level),
                                              "map": name, "metric": metric,
                                              "image": np.arange(len(values)), "value": values}))
        return pd.concat(rows, ignore_index=True)

    return cached("scores", {"kind": "input_dominance", "inputs": inputs, "gradients": gradients,
                             "noise_levels": [float(v) for v in noise_levels],
                             "metrics": list(metrics), "seed": seed, "labels": labels or {}},
                  build, code=(similarity, input_dominance))
