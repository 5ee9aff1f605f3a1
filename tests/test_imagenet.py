"""The ImageNet experiments: EfficientNet-Lite0 as a model under test, the network loader and
the per-network random band."""

from __future__ import annotations

import math

import pandas as pd
import pytest
import torch

from sanitylib import explain, model_under_test
from sanitylib.experiments import imagenet
from sanitylib.experiments.parameter_randomization import against_random
from sanitylib.methods.randomization import randomize
from sanitylib.models import efficientnet as effnet


@pytest.fixture(scope="module")
def networks():
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SANITYLIB_OFFLINE", "1")
        patch.delenv("SANITYLIB_EFFICIENTNET_WEIGHTS", raising=False)
        patch.delenv("SANITYLIB_INCEPTION_WEIGHTS", raising=False)
        patch.setenv("TORCH_HOME", "/nonexistent-torch-home")
        return imagenet.load_networks(list(imagenet.IMAGENET_NETWORKS), ["chelsea", "coffee"])


def test_efficientnet_is_a_built_in_model_under_test(networks):
    loaded, _ = networks
    subject = loaded["efficientnet_lite0"].model
    assert subject.name == "efficientnet_lite0"
    assert list(subject.blocks)[:3] == ["logits", "head", "block15"]
    assert list(subject.blocks)[-2:] == ["block0", "stem"] and len(subject.blocks) == 19
    assert subject.gradcam_layer == "bn2" and len(subject.class_names) == 1000
    assert subject.preprocess is effnet.preprocess


def test_other_timm_efficientnets_are_not_taken_for_lite0():
    import timm

    other = timm.create_model("efficientnet_b0", pretrained=False)
    with pytest.raises(ValueError, match="pass blocks="):
        model_under_test(other)


def test_inception_without_weights_is_skipped_with_the_reason(networks):
    loaded, skipped = networks
    assert "inception_v3" not in loaded
    assert "Tried" in skipped["inception_v3"]


def test_unknown_network_lists_the_choices():
    with pytest.raises(ValueError, match="efficientnet_lite0, inception_v3"):
        imagenet.load_networks(["resnet"], ["chelsea"])


def test_top_classes_name_real_predictions(networks):
    loaded, _ = networks
    table = imagenet.top_classes(loaded, k=3)
    first = table[table["rank"] == 1].set_index("photograph")["class"]
    assert first["coffee"] == "espresso"
    assert "cat" in first["chelsea"] or first["chelsea"] == "tabby"
    assert (table.groupby("photograph").probability.sum() <= 1.0 + 1e-6).all()


def test_default_reinit_follows_the_tensorflow_rule(networks):
    subject = networks[0]["efficientnet_lite0"].model
    steps = dict(randomize(subject, blocks=["head"], seed=3))
    conv = steps["head"].conv_head
    fan_out = conv.kernel_size[0] * conv.kernel_size[1] * conv.out_channels
    assert abs(float(conv.weight.detach().std()) - math.sqrt(2.0 / fan_out)) < 0.05 * math.sqrt(2.0 / fan_out)
    assert not torch.equal(conv.weight, subject.module.conv_head.weight)
    # batch norm of the head: scale 1, offset 0, running statistics kept
    assert torch.equal(steps["head"].bn2.weight, torch.ones_like(steps["head"].bn2.weight))
    assert torch.equal(steps["head"].bn2.running_var, subject.module.bn2.running_var)


def test_guided_backprop_guides_every_relu6(networks):
    net = networks[0]["efficientnet_lite0"]
    x = net.inputs[:1]
    guided = explain(net.model, x, "guided_backprop")
    plain = explain(net.model, x, "gradient")
    assert guided.shape == plain.shape == x.shape
    assert float((guided - plain).abs().max()) > 0.1 * float(plain.abs().max())


def test_untrained_network_is_seeded():
    a, b = effnet.untrained_efficientnet_lite0(1), effnet.untrained_efficientnet_lite0(1)
    assert torch.equal(a.conv_stem.weight, b.conv_stem.weight)
    assert not torch.equal(a.conv_stem.weight, effnet.untrained_efficientnet_lite0(2).conv_stem.weight)


def test_against_random_matches_each_models_band():
    summary = pd.DataFrame({"model": ["small", "large"], "dataset": ["d", "d"],
                            "method": ["gradient"] * 2, "metric": ["ssim"] * 2,
                            "mean": [0.30, 0.30], "low": [0.25, 0.25], "high": [0.35, 0.35]})
    baseline = pd.DataFrame({"model": ["small", "large"], "dataset": ["d", "d"],
                             "metric": ["ssim"] * 2, "mean": [0.2, 0.0], "low": [0.1, -0.01],
                             "high": [0.3, 0.01], "n": [100, 100]})
    verdicts = against_random(summary, baseline, {"gradient": "changes"}).set_index("model")
    assert verdicts.loc["small", "verdict"] == "like random maps"
    assert verdicts.loc["large", "verdict"] == "still similar"
