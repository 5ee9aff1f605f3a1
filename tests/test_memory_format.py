"""channels_last (sanitylib.infra.device.in_fastest_format) changes speed, not the maps beyond
float32 rounding, and is part of a model's cache identity."""

from __future__ import annotations

import copy

import torch
from scipy.stats import spearmanr

from sanitylib.data.photographs import photograph_batch
from sanitylib.infra.device import CHANNELS_LAST, in_fastest_format
from sanitylib.methods.saliency import explain_methods
from sanitylib.models.efficientnet import load_efficientnet_lite0, preprocess
from sanitylib.models.under_test import identity, model_under_test


def test_channels_last_maps_equal_the_default_formats():
    assert ("efficientnet_lite0", "cpu") in CHANNELS_LAST
    default = model_under_test(load_efficientnet_lite0())
    fast = default.with_module(in_fastest_format(copy.deepcopy(default.module),
                                                 "efficientnet_lite0"))
    assert identity(fast) != identity(default)
    x = preprocess(photograph_batch(["chelsea", "coffee"]))
    methods = ["gradient", "guided_backprop", "gradcam"]
    a = explain_methods(default, x, methods)
    b = explain_methods(fast, x, methods)
    for method in methods:
        assert b[method].is_contiguous()
        relative = float((a[method] - b[method]).norm() / a[method].norm())
        assert relative < 1e-3, (method, relative)
        for i in range(2):
            rho = spearmanr(a[method][i].abs().flatten(), b[method][i].abs().flatten())[0]
            assert rho > 0.999, (method, rho)


def test_networks_not_listed_keep_their_format():
    module = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3))
    assert in_fastest_format(module, "cnn")[0].weight.is_contiguous()
