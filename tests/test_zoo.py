"""The architecture study's networks (sanitylib.models.zoo) and the dependence table."""

from __future__ import annotations

import pandas as pd
import pytest
import torch

from sanitylib.experiments.architectures import dependence, study_protocols
from sanitylib.methods.guided import guided_backprop
from sanitylib.methods.randomization import randomize
from sanitylib.models.under_test import model_under_test
from sanitylib.models.zoo import STUDY, build


@pytest.mark.parametrize("architecture", STUDY)
def test_every_network_builds_and_registers_its_blocks(architecture):
    torch.manual_seed(0)
    subject = model_under_test(build(architecture).eval())
    assert subject.name == architecture
    assert subject.module(torch.rand(2, 1, 28, 28)).shape == (2, 10)
    assert next(iter(subject.blocks)) == "logits"
    assert (subject.gradcam_layer is None) == (architecture in ("mlp", "vit"))
    # every parameter belongs to a block, so full cascading randomization changes them all
    covered = {name for paths in subject.blocks.values() for path in paths
               for name, _ in subject.module.get_submodule(path).named_parameters(prefix=path)}
    assert covered == {name for name, _ in subject.module.named_parameters()}


def test_cnn_bn_differs_from_the_cnn_only_by_its_batch_norms():
    torch.manual_seed(0)
    cnn = build("cnn")
    torch.manual_seed(0)
    cnn_bn = build("cnn_bn")
    assert torch.equal(cnn.conv2[0].weight, cnn_bn.conv2[0].weight)
    assert isinstance(cnn_bn.conv2[1], torch.nn.BatchNorm2d)


@pytest.mark.parametrize("architecture", ["cnn_bn", "resnet_bn_relu6"])
def test_default_reinitialization_keeps_batchnorm_statistics(architecture):
    subject = model_under_test(build(architecture).eval())
    for module in subject.module.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.fill_(2.0)
    last = list(randomize(subject))[-1][1]
    means = [m.running_mean for m in last.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert means and all(torch.all(m == 2.0) for m in means)
    assert study_protocols(subject) == ["kept", "reestimated", "reset"]
    assert study_protocols(model_under_test(build("vit"))) == ["kept"]


def test_guided_backprop_has_a_rule_for_every_rectifier_of_the_vit():
    torch.manual_seed(0)
    vit = build("vit").eval()
    x = torch.rand(3, 1, 28, 28)
    maps = guided_backprop(vit, x, torch.tensor([0, 1, 2]))
    assert maps.shape == x.shape and torch.isfinite(maps).all()


def test_dependence_reads_the_verdicts_across_architectures_and_protocols():
    claims = pd.DataFrame({
        "protocol": ["kept", "kept", "kept", "kept", "reset"],
        "model": ["cnn", "vit", "cnn", "vit", "cnn"],
        "method": ["gradient", "gradient", "guided_backprop", "guided_backprop", "gradient"],
        "verdict": ["agrees", "agrees", "agrees", "differs", "differs"]})
    table = dependence(claims, {"gradient": "Gradient", "guided_backprop": "Guided BackProp"})
    rows = table.set_index("method")
    assert rows.loc["Gradient", "depends on the architecture"] == "no"
    assert rows.loc["Gradient", "changes with the protocol on"] == "CNN"
    assert rows.loc["Guided BackProp", "depends on the architecture"] == "yes"
    assert rows.loc["Guided BackProp", "differs on"] == "ViT (ReLU MLP)"
