"""Edge detectors, the yardstick of Adebayo et al. (2018), Fig. 1: Sobel, Canny and a conv layer
set to Sobel filters (the NeurIPS reviewers' request), with scikit-image for Sobel and Canny.

Arrays in, arrays out: a batch of images (B, 1 or 3, H, W) in [0, 1] gives (B, 1, H, W) maps.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from skimage import color
from skimage.feature import canny as skimage_canny
from skimage.filters import sobel as skimage_sobel
from torch import nn

__all__ = ["DETECTORS", "DETECTOR_LABELS", "SOBEL_X", "canny", "edge_maps", "grayscale",
           "magnitude", "sobel", "sobel_conv", "sobel_conv_layer"]

ArrayLike = np.ndarray | torch.Tensor
DETECTORS = ("sobel", "canny", "sobel_conv")
DETECTOR_LABELS = {"sobel": "Sobel", "canny": "Canny", "sobel_conv": "Sobel conv layer"}

#: The Sobel derivative along x (columns); its transpose is the derivative along y.
SOBEL_X = torch.tensor([[1.0, 0.0, -1.0], [2.0, 0.0, -2.0], [1.0, 0.0, -1.0]])


def grayscale(images: ArrayLike) -> np.ndarray:
    """(B, H, W) intensities of a batch (B, 1, H, W) or (B, 3, H, W) of images in [0, 1].

    Colour images go through scikit-image's ``rgb2gray`` (ITU-R 709 luma weights); a single
    channel is taken as it is, whatever its range (a saliency map, say).
    """
    array = images.detach().cpu().numpy() if isinstance(images, torch.Tensor) else np.asarray(images)
    array = array.astype(np.float64)
    if array.ndim != 4 or array.shape[1] not in (1, 3):
        raise ValueError(f"expected a batch (B, 1 or 3, H, W); got shape {array.shape}")
    if array.shape[1] == 1:
        return array[:, 0]
    return color.rgb2gray(array, channel_axis=1)


def sobel(images: ArrayLike) -> np.ndarray:
    """scikit-image's Sobel edge magnitude of each image, (B, 1, H, W).

    One call per image: scikit-image's n-dimensional Sobel would also smooth across the batch
    axis of a stacked batch.
    """
    return np.stack([skimage_sobel(g) for g in grayscale(images)])[:, None]


def canny(images: ArrayLike, sigma: float = 1.0) -> np.ndarray:
    """scikit-image's Canny edges of each image as 0/1 floats, (B, 1, H, W).

    ``sigma`` is the Gaussian smoothing before the gradient (scikit-image's Canny is 2-D only,
    hence one call per image).
    """
    return np.stack([skimage_canny(g, sigma=sigma) for g in grayscale(images)]
                    ).astype(np.float64)[:, None]


def sobel_conv_layer() -> nn.Conv2d:
    """A conv layer (1 -> 2 channels, 3x3) whose filters are the Sobel x and y derivatives.

    Replicate padding of one pixel repeats the border pixel, which is what scikit-image's default
    ``mode="reflect"`` does for a 3x3 kernel, so the layer agrees with :func:`sobel` everywhere.
    """
    layer = nn.Conv2d(1, 2, 3, padding=1, padding_mode="replicate", bias=False)
    with torch.no_grad():
        layer.weight.copy_(torch.stack([SOBEL_X, SOBEL_X.T])[:, None])
    layer.requires_grad_(False)
    return layer


def sobel_conv(images: ArrayLike) -> np.ndarray:
    """Edge magnitude sqrt(gx^2 + gy^2) from :func:`sobel_conv_layer`, batched, (B, 1, H, W).

    Equals scikit-image's Sobel times 4 sqrt(2): scikit-image divides each kernel by 4 and the
    sum of squares by the number of axes.
    """
    gray = torch.from_numpy(grayscale(images)).float()[:, None]
    with torch.no_grad():
        gradients = sobel_conv_layer()(gray)
    return gradients.pow(2).sum(1, keepdim=True).sqrt().double().cpu().numpy()


def edge_maps(images: ArrayLike, detectors: Sequence[str] = DETECTORS,
              canny_sigma: float = 1.0) -> dict[str, np.ndarray]:
    """``{detector: (B, 1, H, W) edge map}`` of images in [0, 1] for each of :data:`DETECTORS`."""
    unknown = [d for d in detectors if d not in DETECTORS]
    if unknown:
        raise ValueError(f"unknown detector(s) {unknown}; valid choices: {', '.join(DETECTORS)}")
    functions = {"sobel": sobel, "canny": lambda x: canny(x, canny_sigma),
                 "sobel_conv": sobel_conv}
    return {d: functions[d](images) for d in detectors}


def magnitude(maps: ArrayLike) -> np.ndarray:
    """(B, 1, H, W): |map| summed over channels, the form in which maps meet edge maps."""
    array = maps.detach().cpu().numpy() if isinstance(maps, torch.Tensor) else np.asarray(maps)
    if array.ndim != 4:
        raise ValueError(f"expected a batch (B, C, H, W); got shape {array.shape}")
    return np.abs(array.astype(np.float64)).sum(1, keepdims=True)
