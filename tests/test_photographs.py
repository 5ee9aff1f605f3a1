"""Photographs for the ImageNet experiments: built-in sources, the user's folder, bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from sanitylib.data import photographs as photos
from sanitylib.data.sources import DataUnavailableError


@pytest.fixture(autouse=True)
def _no_folder(monkeypatch):
    monkeypatch.delenv(photos.FOLDER_VARIABLE, raising=False)


def test_every_built_in_photograph_loads_as_a_centre_crop_in_unit_range():
    batch = photos.photograph_batch(list(photos.BUILT_IN_PHOTOGRAPHS), size=64)
    assert batch.shape == (len(photos.BUILT_IN_PHOTOGRAPHS), 3, 64, 64)
    assert batch.dtype == torch.float32
    assert 0.0 <= float(batch.min()) and float(batch.max()) <= 1.0
    # six different pictures, none blank
    assert (batch.flatten(1).std(dim=1) > 0.05).all()
    assert len({round(float(b.mean()), 4) for b in batch}) == len(batch)


def test_unknown_name_lists_the_valid_choices():
    with pytest.raises(ValueError, match="valid choices: chelsea, coffee") as error:
        photos.photograph_batch(["chelsea", "no_such_photo"])
    assert photos.FOLDER_VARIABLE in str(error.value)


def test_user_folder_adds_its_images_by_file_name(tmp_path, monkeypatch):
    # a 40x20 image: left half red, right half blue; the centre crop of its 20-pixel side
    # is the middle 20x20, half red and half blue
    array = np.zeros((20, 40, 3), dtype=np.uint8)
    array[:, :20, 0] = 255
    array[:, 20:, 2] = 255
    Image.fromarray(array).save(tmp_path / "halves.png")
    (tmp_path / "notes.txt").write_text("not an image")
    monkeypatch.setenv(photos.FOLDER_VARIABLE, str(tmp_path))
    assert photos.available_photographs()[-1] == "halves"
    batch = photos.photograph_batch(["halves"], size=20, crop_fraction=1.0)
    assert batch.shape == (1, 3, 20, 20)
    assert torch.allclose(batch[0, 0, :, :8], torch.ones(20, 8))
    assert torch.allclose(batch[0, 2, :, -8:], torch.ones(20, 8))
    assert float(batch[0, 1].abs().max()) == 0.0


def test_unreadable_image_and_missing_folder_are_named(tmp_path, monkeypatch):
    (tmp_path / "broken.jpg").write_bytes(b"not a jpeg")
    monkeypatch.setenv(photos.FOLDER_VARIABLE, str(tmp_path))
    with pytest.raises(DataUnavailableError, match="broken.jpg"):
        photos.photograph_batch(["broken"])
    monkeypatch.setenv(photos.FOLDER_VARIABLE, str(tmp_path / "missing"))
    with pytest.raises(DataUnavailableError, match="is not a folder"):
        photos.available_photographs()
