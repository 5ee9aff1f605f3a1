"""Models: architectures, block order, pretrained-weight mechanics (issue 2)."""

from __future__ import annotations

import pytest
import torch
from torchvision.models import Inception_V3_Weights

from sanitylib import model_under_test
from sanitylib.models.inception import (
    PretrainedWeightsUnavailable,
    load_inception_v3,
    untrained_inception_v3,
)
from sanitylib.models.zoo import build


def blocks(model):
    return list(model_under_test(model).blocks.items())


def test_cnn_and_mlp_have_the_papers_shapes_and_blocks():
    cnn, mlp = build("cnn"), build("mlp")
    assert cnn(torch.rand(2, 1, 28, 28)).shape == (2, 10)
    assert [n for n, _ in blocks(cnn)] == ["logits", "fc1", "conv2", "conv1"]
    assert [n for n, _ in blocks(mlp)] == ["logits", "hidden3", "hidden2", "hidden1"]
    assert cnn.conv1[0].weight.shape == (32, 1, 5, 5) and cnn.conv2[0].weight.shape == (64, 32, 5, 5)
    assert cnn.fc1[1].weight.shape == (1024, 3136)
    widths = [m.weight.shape for m in mlp.modules() if isinstance(m, torch.nn.Linear)]
    assert widths == [(2500, 784), (1500, 2500), (500, 1500), (10, 500)]


def test_inception_blocks_are_the_17_of_the_paper():
    names = [n for n, _ in blocks(untrained_inception_v3())]
    assert len(names) == 17 and names[0] == "Logits" and names[-1] == "Conv2d_1a_3x3"
    assert model_under_test(untrained_inception_v3()).blocks["Logits"] == ("fc",)


def test_pretrained_weights_load_from_torchvisions_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(PretrainedWeightsUnavailable, match="weight cache"):
        load_inception_v3()
    # Mechanics only: weights we saved ourselves under torchvision's file name.
    saved = untrained_inception_v3(seed=5)
    filename = Inception_V3_Weights.IMAGENET1K_V1.url.rsplit("/", 1)[-1]
    (tmp_path / "hub" / "checkpoints").mkdir(parents=True)
    torch.save(saved.state_dict(), tmp_path / "hub" / "checkpoints" / filename)
    loaded = load_inception_v3()
    assert not loaded.training and loaded.transform_input
    for (name, a), b in zip(saved.state_dict().items(), loaded.state_dict().values()):
        assert torch.equal(a, b), name


def test_explicit_weights_file(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    path = tmp_path / "mine.pth"
    torch.save(untrained_inception_v3(seed=6).state_dict(), path)
    monkeypatch.setenv("SANITYLIB_INCEPTION_WEIGHTS", str(path))
    assert load_inception_v3() is not None


def test_unknown_architecture_lists_choices():
    with pytest.raises(ValueError, match="cnn, mlp"):
        build("resnet")
