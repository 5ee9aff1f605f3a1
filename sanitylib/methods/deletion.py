"""Is a map faithful to the model? Delete the pixels it ranks first and watch the class fall.

The deletion curve, "most relevant first" (MoRF): Samek et al. (2017), "Evaluating the
visualization of what a deep neural network has learned", IEEE TNNLS 28(11),
https://doi.org/10.1109/TNNLS.2016.2599820, and Petsiuk et al. (2018), RISE, BMVC. The image is
cut into square regions (Samek et al. used 9×9 pixels; ``region=1`` deletes single pixels),
ordered by the map's magnitude summed over each (``|map|`` summed over channels); after
deleting the first fraction ``f`` of them (every channel of every pixel set to a baseline value)
the model's probability of the explained class is recorded. A faithful map's curve falls faster
than that of a random order of the same regions (the reference a map has to beat); the
*deletion gain* is the area between the two, in units of probability × fraction deleted.
Regions matter: deleting scattered single pixels of a photograph acts like noise over the whole
image, which lowers the class more than deleting any compact object, so a pixel-wise random
order is a reference no compact map can beat.

Quantus's ``PixelFlipping`` computes the same curve one step at a time (the tests check it);
written here to perturb every fraction of every image in one batch, to break ties in the
ranking at random (seeded) instead of by ``argsort``'s order, and to return NaN for a constant
map, which orders nothing. ROAD (Rong et al. 2022) replaces deleted pixels by an imputation from
their neighbours so that the deleted image stays closer to the data; this module's baseline value
does not, and the chapter says so.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from sanitylib.infra.device import module_device
from sanitylib.methods.edges import magnitude
from sanitylib.methods.frozen import explaining
from sanitylib.methods.saliency import max_rows_per_pass
from sanitylib.models.under_test import ModelUnderTest

__all__ = ["FRACTIONS", "curve_area", "deletion_curves", "deletion_order", "random_order"]

#: The fractions of pixels deleted, by default: none to half the image in steps of 5 %.
FRACTIONS = tuple(round(0.05 * k, 2) for k in range(11))


def _regions(relevance: np.ndarray, region: int) -> np.ndarray:
    """(B, 1, H, W) relevance summed over ``region`` × ``region`` squares, (B, H/r · W/r)."""
    n, _, height, width = relevance.shape
    if height % region or width % region:
        raise ValueError(f"region {region} does not divide the {height}×{width} image")
    pooled = relevance.reshape(n, height // region, region, width // region, region)
    return pooled.sum(axis=(2, 4)).reshape(n, -1)


def deletion_order(maps: torch.Tensor | np.ndarray, region: int = 1, seed: int = 0
                   ) -> np.ndarray:
    """Region indices of each map from most to least relevant, (B, number of regions), the
    regions ``region`` × ``region`` squares in row-major order; ties in an order drawn from
    ``seed``. Rows of a map constant over the regions are -1 (no order)."""
    relevance = _regions(magnitude(maps), region)
    rng = np.random.default_rng(seed)
    tiebreak = rng.random(relevance.shape)
    order = np.lexsort((tiebreak, -relevance), axis=1)
    order[~(np.ptp(relevance, axis=1) > 0)] = -1
    return order


def random_order(n_images: int, n_regions: int, seed: int) -> np.ndarray:
    """A seeded random order of the regions of each image, (n_images, n_regions)."""
    rng = np.random.default_rng(seed + 7)
    return np.argsort(rng.random((n_images, n_regions)), axis=1)


@torch.no_grad()
def deletion_curves(model: ModelUnderTest | nn.Module, inputs: torch.Tensor, order: np.ndarray,
                    target: torch.Tensor, fractions: Sequence[float] = FRACTIONS,
                    baseline: float = 0.0, region: int = 1, max_rows: int | None = None
                    ) -> np.ndarray:
    """The probability of class ``target[i]`` as the first ``fractions`` of image ``i``'s
    regions in ``order`` (:func:`deletion_order`, :func:`random_order`, with the same
    ``region``) are set to ``baseline`` in every channel, (B, len(fractions)); a row without an
    order (-1) is NaN. Every fraction of every image goes in one batch, passed in chunks of
    ``max_rows`` (by default the book's rule for a pass,
    :func:`~sanitylib.methods.saliency.max_rows_per_pass`: on a CPU at most 256 rows and 8 MB of
    input, which ran EfficientNet-Lite0's deletion twice as fast as passes of 64 photographs)."""
    module = model.module if isinstance(model, ModelUnderTest) else model
    n, _, height, width = inputs.shape
    rows_, cols_ = height // region, width // region
    if order.shape != (n, rows_ * cols_):
        raise ValueError(f"order {order.shape} does not match inputs {tuple(inputs.shape)} in "
                         f"regions of {region}")
    if not all(0.0 <= f <= 1.0 for f in fractions):
        raise ValueError(f"fractions must lie in [0, 1], got {list(fractions)}")
    rank = np.empty_like(order)
    np.put_along_axis(rank, np.maximum(order, 0), np.arange(rows_ * cols_)[None], axis=1)
    counts = np.round(np.asarray(fractions) * rows_ * cols_).astype(int)
    deleted = torch.from_numpy(rank[:, None, :] < counts[None, :, None])  # (B, F, regions)
    deleted = deleted.view(n, len(counts), 1, rows_, 1, cols_, 1)
    deleted = deleted.expand(-1, -1, -1, -1, region, -1, region).reshape(
        n, len(counts), 1, height, width)
    perturbed = torch.where(deleted, torch.as_tensor(baseline, dtype=inputs.dtype),
                            inputs.cpu()[:, None]).flatten(0, 1)
    rows = torch.arange(n).repeat_interleave(len(counts))
    device = module_device(module)
    max_rows = max_rows or max_rows_per_pass(perturbed[:1].to(device), {})
    with explaining(module):
        probability = torch.cat([
            module(perturbed[i:i + max_rows].to(device)).softmax(dim=1)
            .gather(1, target[rows[i:i + max_rows]].to(device)[:, None])[:, 0].cpu()
            for i in range(0, len(perturbed), max_rows)])
    curves = probability.view(n, len(counts)).double().cpu().numpy()
    curves[(order < 0).any(axis=1)] = np.nan
    return curves


def curve_area(curves: np.ndarray, fractions: Sequence[float] = FRACTIONS) -> np.ndarray:
    """Area under each curve over the fractions deleted (trapezoid rule), (B,)."""
    return np.trapezoid(curves, np.asarray(fractions, dtype=float), axis=1)
