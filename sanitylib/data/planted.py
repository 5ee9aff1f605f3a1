"""Images whose evidence is known by construction: a ground truth for saliency maps.

Two constructions on MNIST or Fashion-MNIST, each with the mask of the pixels that decide the
class (the *evidence*) for every image:

- ``patch``: a small class-specific pattern (a 5×5 binary code inside a one-pixel frame) pasted at
  a random position over a photograph of the base dataset whose own content is a distractor: the
  label is drawn at random, independently of the digit or garment, and decides which pattern is
  pasted. A model that classifies these images above chance can only have read the patch. With
  ``informative=False`` (the *control*) the same construction keeps the base label and pastes a
  pattern drawn independently of it: the patch is still there, but carries no information, and
  a method that explains the model should move its relevance away from it.
- ``block``: the BlockMNIST construction of Shah et al. (2021), "Do input gradients highlight
  discriminative features?", NeurIPS: the image shrunk to 14×14 in one half of the canvas (top or
  bottom, at random) and a fixed *null* pattern in the other; the label is the image's own, and
  the evidence is its half.

Kim et al. (2022), "Sanity simulations for saliency methods" (SMERF, ICML), build the same kind of
ground truth; the evaluation metrics are :mod:`sanitylib.methods.localization`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch.nn import functional as F

from sanitylib.data.images import CLASS_NAMES, ImageDataset
from sanitylib.infra.cache import fingerprint

__all__ = ["BLOCK", "CODE", "PATCH", "VARIANTS", "PlantedDataset", "class_patterns",
           "null_block", "planted_dataset"]

#: The constructions, by name.
VARIANTS = ("patch", "block")
#: Side of a class code, and of the pasted patch (the code inside a one-pixel frame of ones).
CODE = 5
PATCH = CODE + 2
#: Side of the BlockMNIST half-image.
BLOCK = 14
#: Two class codes differ in at least this many of their 25 pixels.
MIN_DISTANCE = 8


@dataclass(frozen=True)
class PlantedDataset(ImageDataset):
    """An :class:`~sanitylib.data.images.ImageDataset` with the evidence mask of every image
    (``masks_*``: bool, shaped like the images' one channel, (N, 1, 28, 28))."""

    masks_train: torch.Tensor
    masks_test: torch.Tensor
    variant: str
    informative: bool
    #: The dataset the images come from.
    base: str

    @property
    def classes(self) -> list[str]:
        if self.variant == "patch" and self.informative:
            return [f"code {k}" for k in range(10)]
        return CLASS_NAMES[self.base]


def class_patterns(n_classes: int = 10, seed: int = 0) -> torch.Tensor:
    """``n_classes`` seeded binary codes of :data:`CODE` × :data:`CODE` pixels framed by ones,
    (n_classes, PATCH, PATCH), any two differing in at least :data:`MIN_DISTANCE` code pixels."""
    rng = np.random.default_rng(seed + 104729)
    codes: list[np.ndarray] = []
    while len(codes) < n_classes:
        code = rng.integers(0, 2, (CODE, CODE))
        if all(int((code != c).sum()) >= MIN_DISTANCE for c in codes):
            codes.append(code)
    patches = np.ones((n_classes, PATCH, PATCH), dtype=np.float32)
    patches[:, 1:-1, 1:-1] = np.stack(codes)
    return torch.from_numpy(patches)


def null_block() -> torch.Tensor:
    """BlockMNIST's null pattern: a square outline, two pixels wide, filling a
    :data:`BLOCK` × :data:`BLOCK` cell (Shah et al. 2021, Fig. 2)."""
    block = torch.zeros(BLOCK, BLOCK)
    block[2:-2, 2:-2] = 1.0
    block[4:-4, 4:-4] = 0.0
    return block


def _paste_patches(x: torch.Tensor, codes: torch.Tensor, patterns: torch.Tensor,
                   generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """``x`` with pattern ``codes[i]`` pasted at a random position of image ``i``, and the
    masks; vectorized over the images by scattering each patch's pixels."""
    n, _, height, width = x.shape
    rows = torch.randint(0, height - PATCH + 1, (n,), generator=generator)
    cols = torch.randint(0, width - PATCH + 1, (n,), generator=generator)
    offsets = torch.arange(PATCH)
    r = (rows[:, None] + offsets)[:, :, None].expand(n, PATCH, PATCH)
    c = (cols[:, None] + offsets)[:, None, :].expand(n, PATCH, PATCH)
    i = torch.arange(n)[:, None, None].expand(n, PATCH, PATCH)
    out = x.clone()
    out[i, 0, r, c] = patterns[codes]
    masks = torch.zeros(n, 1, height, width, dtype=torch.bool)
    masks[i, 0, r, c] = True
    return out, masks


def _blocks(x: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """BlockMNIST images: each image shrunk to a :data:`BLOCK`-pixel cell in the top or bottom
    half (at random, centred across) and the null pattern in the other half, with the masks of
    the image's half."""
    n, _, height, width = x.shape
    small = F.avg_pool2d(x, 2)
    top = torch.randint(0, 2, (n,), generator=generator).bool()
    left = (width - BLOCK) // 2
    signal = torch.zeros(n, 1, height // 2, width)
    signal[:, :, :, left:left + BLOCK] = small
    null = torch.zeros(1, 1, height // 2, width)
    null[..., left:left + BLOCK] = null_block()
    empty = torch.zeros(n, 1, height // 2, width, dtype=torch.bool)
    full = torch.ones(n, 1, height // 2, width, dtype=torch.bool)
    first = torch.where(top[:, None, None, None], signal, null.expand(n, -1, -1, -1))
    second = torch.where(top[:, None, None, None], null.expand(n, -1, -1, -1), signal)
    masks = torch.cat([torch.where(top[:, None, None, None], full, empty),
                       torch.where(top[:, None, None, None], empty, full)], dim=2)
    return torch.cat([first, second], dim=2), masks


def _split(x: torch.Tensor, y: torch.Tensor, variant: str, informative: bool,
           generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    if variant == "block":
        images, masks = _blocks(x, generator)
        return images, y, masks
    patterns = class_patterns()
    drawn = torch.randint(0, len(patterns), (len(y),), generator=generator)
    labels = drawn if informative else y
    images, masks = _paste_patches(x, drawn, patterns, generator)
    return images, labels, masks


def planted_dataset(base: ImageDataset, variant: str = "patch", informative: bool = True,
                    seed: int = 0) -> PlantedDataset:
    """The ``variant`` construction (:data:`VARIANTS`) on every image of ``base``, seeded.

    ``informative=False`` gives the patch construction's control: the base labels, with a
    pattern drawn independently of them (the block construction has no control: its null half
    never carries information). The ``source`` names the base data, the construction and a
    fingerprint of the arrays, so that a model trained on it is cached by its contents.
    """
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; valid choices: {', '.join(VARIANTS)}")
    if variant == "block" and not informative:
        raise ValueError("the block construction has no uninformative control; use "
                         "variant='patch' for the control")
    if tuple(base.x_train.shape[1:]) != (1, 28, 28):
        raise ValueError(f"planted evidence needs 1×28×28 images, got {tuple(base.x_train.shape[1:])}")
    generator = torch.Generator().manual_seed(seed)
    x_train, y_train, m_train = _split(base.x_train, base.y_train, variant, informative, generator)
    x_test, y_test, m_test = _split(base.x_test, base.y_test, variant, informative, generator)
    kind = variant if informative else "patch control"
    name = f"{base.name}_{variant}" + ("" if informative else "_control")
    digest = fingerprint(x_train, y_train, x_test, y_test)[:16]
    source = f"{base.source_label}; planted {kind}, seed {seed} (arrays {digest})"
    return PlantedDataset(name, x_train, y_train, x_test, y_test, source, m_train, m_test,
                          variant, informative, base.name)
