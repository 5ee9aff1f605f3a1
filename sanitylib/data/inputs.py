"""The inputs a user checks a model on: a folder of images or a tensor file.

- a folder of PNG / JPEG files: read in name order as RGB in [0, 1] (as gray levels when every
  file is grayscale), centre-cropped and resized to ``size`` when given, otherwise all of one
  size;
- a ``.pt`` file holding one tensor (loaded with ``weights_only=True``) or a ``.npy`` array
  (``allow_pickle=False``), shaped (N, C, H, W), (N, H, W) or (C, H, W).

Failures raise :class:`sanitylib.data.sources.DataUnavailableError` with one line.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from sanitylib.data.photographs import IMAGE_SUFFIXES, load_images
from sanitylib.data.sources import DataUnavailableError

__all__ = ["TENSOR_SUFFIXES", "load_inputs"]

TENSOR_SUFFIXES = (".pt", ".pth", ".npy")


def _folder(path: Path, size: tuple[int, int] | None) -> torch.Tensor:
    from PIL import Image

    files = sorted(f for f in path.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise DataUnavailableError(f"no PNG or JPEG files in {path}")
    if size is not None:
        if size[0] != size[1]:
            raise DataUnavailableError(f"square inputs only, got size {size}")
        return load_images(files, size=size[0], crop_fraction=1.0)
    arrays = []
    for f in files:
        try:
            with Image.open(f) as image:
                gray = image.mode in ("L", "I;16", "1")
                arrays.append((np.asarray(image.convert("L" if gray else "RGB")), gray))
        except OSError as error:
            raise DataUnavailableError(f"cannot read image {f}: {error}") from None
    shapes = {a.shape[:2] for a, _ in arrays}
    if len(shapes) > 1:
        raise DataUnavailableError(f"the images in {path} differ in size ({sorted(shapes)}); "
                                   "give the model's input size")
    all_gray = all(g for _, g in arrays)
    batch = [a[None] if all_gray else (np.repeat(a[..., None], 3, 2) if g else a).transpose(2, 0, 1)
             for a, g in arrays]
    return torch.from_numpy(np.stack(batch).astype(np.float32) / 255.0)


def _tensor_file(path: Path) -> torch.Tensor:
    try:
        if path.suffix == ".npy":
            value = torch.from_numpy(np.load(path, allow_pickle=False))
        else:
            value = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - any unreadable file: one line
        raise DataUnavailableError(f"cannot read {path}: {type(error).__name__}: "
                                   f"{str(error).splitlines()[0][:160]}") from None
    if not isinstance(value, torch.Tensor):
        raise DataUnavailableError(f"{path} holds a {type(value).__name__}, not a tensor")
    if value.ndim == 3:
        value = value[None] if value.shape[0] in (1, 3) else value[:, None]
    if value.ndim != 4:
        raise DataUnavailableError(f"{path} holds a tensor of shape {tuple(value.shape)}; "
                                   "expected (N, C, H, W), (N, H, W) or (C, H, W)")
    return value.float()


def load_inputs(path: str | Path, size: tuple[int, int] | None = None) -> torch.Tensor:
    """A (N, C, H, W) float batch from a folder of images or a tensor file."""
    path = Path(path)
    if path.is_dir():
        return _folder(path, size)
    if path.is_file() and path.suffix.lower() in TENSOR_SUFFIXES:
        return _tensor_file(path)
    if path.is_file():
        raise DataUnavailableError(f"{path}: inputs are a folder of images "
                                   f"({', '.join(IMAGE_SUFFIXES)}) or a tensor file "
                                   f"({', '.join(TENSOR_SUFFIXES)})")
    raise DataUnavailableError(f"no such file or folder {path}")
