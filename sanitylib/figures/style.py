"""What every figure of the book shares: sizes that fit the page, fonts, colours, images.

The book's text column is 688 px wide in a 1280 px window and figures are drawn at 100 dpi, so a
figure of at most :data:`PAGE_WIDTH` inches is shown at its own size: 9 pt text stays 9 pt on
screen (:func:`sanitylib.figures.pages.check_readable` holds every book figure to it).
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np
import torch

__all__ = ["MIN_FONT_SIZE", "PAGE_WIDTH", "PALETTE", "color_for", "image_array", "page_size", "use_book_style"]

#: Width of the book's text column in inches at 100 dpi.
PAGE_WIDTH = 6.7  # 670 px: the 688 px column with room for the tight crop's margin
#: The smallest text a figure may show, in points.
MIN_FONT_SIZE = 9

#: Line colours: tab10 without its grey, which is kept for the random-map band.
PALETTE = [plt.cm.tab10(i) for i in (0, 1, 2, 3, 4, 5, 6, 8, 9)] + ["black", "olive", "navy"]


def use_book_style() -> None:
    """Fonts of at least 9 pt, 100 dpi, tight bounding boxes: figures as the page shows them."""
    mpl.rcParams.update({"figure.dpi": 100, "savefig.dpi": 100, "font.size": 9,
                         "axes.titlesize": 10, "axes.labelsize": 9, "xtick.labelsize": 9,
                         "ytick.labelsize": 9, "legend.fontsize": 9,
                         "figure.titlesize": 10})


def page_size(width: float, height: float) -> tuple[float, float]:
    """``(width, height)`` scaled down, aspect kept, so that the figure fits the page width."""
    scale = min(1.0, PAGE_WIDTH / width)
    return width * scale, height * scale


def color_for(names: Sequence[str], name: str) -> tuple[float, ...] | str:
    """The colour of ``name`` among ``names``: stable across the figures of a chapter."""
    return PALETTE[list(names).index(name) % len(PALETTE)]


def image_array(x: torch.Tensor) -> np.ndarray:
    """(C, H, W) tensor in [0, 1] -> an array imshow accepts."""
    array = x.detach().cpu().numpy()
    return array[0] if array.shape[0] == 1 else np.transpose(array, (1, 2, 0)).clip(0, 1)
