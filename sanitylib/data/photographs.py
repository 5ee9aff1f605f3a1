"""Natural photographs for the ImageNet experiments, from packages or from the user's folder.

Adebayo et al. (2018) explain 200 ImageNet validation images. No ImageNet images can be fetched
here, so the book uses every natural colour photograph of an ImageNet-like object that ships with
its packages: scikit-image's ``chelsea``, ``coffee``, ``astronaut``, ``rocket`` and the left view
of ``stereo_motorcycle``, and matplotlib's ``grace_hopper``. Set ``SANITYLIB_PHOTOGRAPHS`` to a
folder of PNG or JPEG files (ImageNet validation images, say) to add them under their file names.

Images are prepared as for evaluating an ImageNet network: the shorter side resized (antialiased)
to ``size / crop_fraction``, then the centre ``size`` x ``size`` crop, as RGB in [0, 1]. Each
network's own scaling (:attr:`sanitylib.models.ModelUnderTest.preprocess`) is applied after.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

from sanitylib.data.sources import DataUnavailableError

__all__ = ["BUILT_IN_PHOTOGRAPHS", "CALIBRATION_PHOTOGRAPHS", "FOLDER_VARIABLE", "IMAGE_SUFFIXES",
           "available_photographs", "calibration_batch", "load_images", "photograph_batch"]

FOLDER_VARIABLE = "SANITYLIB_PHOTOGRAPHS"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


def _skimage(name: str) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        from skimage import data

        return getattr(data, name)()
    return load


def _motorcycle() -> np.ndarray:
    from skimage import data

    return data.stereo_motorcycle()[0]


def _grace_hopper() -> np.ndarray:
    import matplotlib.cbook
    from PIL import Image

    with matplotlib.cbook.get_sample_data("grace_hopper.jpg") as handle:
        return np.asarray(Image.open(handle).convert("RGB"))


#: Photograph name -> loader of an (H, W, 3) uint8 RGB array, from installed packages only.
BUILT_IN_PHOTOGRAPHS: dict[str, Callable[[], np.ndarray]] = {
    "chelsea": _skimage("chelsea"), "coffee": _skimage("coffee"),
    "astronaut": _skimage("astronaut"), "rocket": _skimage("rocket"),
    "motorcycle": _motorcycle, "grace_hopper": _grace_hopper,
}

#: scikit-image's other pictures, never explained: the inputs on which batch-norm statistics are
#: re-estimated (:data:`sanitylib.methods.randomization.BATCHNORM`). Grey ones become 3 equal
#: channels; textures, microscopy and astronomy are far from ImageNet, so the statistics they
#: give are those of "other images", not of ImageNet's.
CALIBRATION_PHOTOGRAPHS = ("camera", "coins", "clock", "moon", "brick", "grass", "gravel",
                           "cell", "immunohistochemistry", "hubble_deep_field", "retina",
                           "colorwheel")


def calibration_batch(size: int = 224, crop_fraction: float = 0.875) -> torch.Tensor:
    """:data:`CALIBRATION_PHOTOGRAPHS` prepared as :func:`photograph_batch` does, each followed by
    its mirror image: (24, 3, size, size) in [0, 1]."""
    from skimage import data

    images = torch.stack([_prepare(getattr(data, name)(), size, crop_fraction)
                          for name in CALIBRATION_PHOTOGRAPHS])
    return torch.stack([images, images.flip(-1)], dim=1).flatten(0, 1)


def _folder_files() -> dict[str, Path]:
    folder = os.environ.get(FOLDER_VARIABLE)
    if not folder:
        return {}
    path = Path(folder)
    if not path.is_dir():
        raise DataUnavailableError(f"{FOLDER_VARIABLE}={folder} is not a folder")
    return {f.stem: f for f in sorted(path.iterdir()) if f.suffix.lower() in IMAGE_SUFFIXES}


def available_photographs() -> list[str]:
    """Every photograph name :func:`photograph_batch` accepts: the built-in ones, then the files of
    ``$SANITYLIB_PHOTOGRAPHS``."""
    return [*BUILT_IN_PHOTOGRAPHS, *(n for n in _folder_files() if n not in BUILT_IN_PHOTOGRAPHS)]


def _read(path: Path) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            return np.asarray(image.convert("RGB"))
    except (OSError, UnidentifiedImageError) as error:
        raise DataUnavailableError(f"cannot read image {path}: {error}") from None


def _prepare(image: np.ndarray, size: int, crop_fraction: float) -> torch.Tensor:
    from torchvision.transforms import v2

    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    tensor = torch.from_numpy(np.array(image[..., :3], copy=True)).permute(2, 0, 1)
    crop = v2.Compose([v2.Resize(round(size / crop_fraction), antialias=True),
                       v2.CenterCrop(size)])
    return crop(tensor).float() / 255.0


def load_images(paths: Sequence[str | Path], size: int = 224, crop_fraction: float = 0.875
                ) -> torch.Tensor:
    """Image files (PNG, JPEG) -> (N, 3, size, size) RGB in [0, 1], centre-cropped."""
    return torch.stack([_prepare(_read(Path(p)), size, crop_fraction) for p in paths])


def photograph_batch(names: Sequence[str], size: int = 224, crop_fraction: float = 0.875
                ) -> torch.Tensor:
    """The named photographs as a (N, 3, size, size) batch in [0, 1].

    ``crop_fraction``: the share of the resized shorter side kept by the centre crop (0.875 is
    the usual ImageNet evaluation crop, 224 of 256; torchvision's Inception v3 uses 299 of 342).
    """
    files = _folder_files()
    unknown = [n for n in names if n not in BUILT_IN_PHOTOGRAPHS and n not in files]
    if unknown:
        raise ValueError(f"unknown photograph(s) {unknown}; valid choices: "
                         f"{', '.join(available_photographs())} (add your own with "
                         f"{FOLDER_VARIABLE}=<folder of PNG/JPEG files>)")
    if not names:
        raise ValueError("no photographs named")
    images = [BUILT_IN_PHOTOGRAPHS[n]() if n in BUILT_IN_PHOTOGRAPHS else _read(files[n])
              for n in names]
    return torch.stack([_prepare(image, size, crop_fraction) for image in images])
