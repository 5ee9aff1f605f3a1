"""The smoothed networks of Kokhlikyan et al. (sanitylib.models.smooth, LogSumExpPool2d)."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from sanitylib.methods.randomization import randomize
from sanitylib.models.smooth import LogSumExpPool2d, smooth
from sanitylib.models.zoo import build


def test_logsumexp_pooling_lies_between_max_minus_log_n_over_t_and_max():
    x = torch.randn(2, 3, 8, 8) * 3
    maxed = nn.MaxPool2d(2)(x)
    for t in (0.5, 2.0, 10.0):
        lse = LogSumExpPool2d(2, temperature=t)(x)
        assert lse.shape == maxed.shape
        assert torch.all(lse <= maxed + 1e-5)
        assert torch.all(lse >= maxed - math.log(4) / t - 1e-5)


def test_logsumexp_pooling_tends_to_max_pooling_as_the_temperature_grows():
    x = torch.randn(1, 2, 6, 6)
    errors = [float((LogSumExpPool2d(2, temperature=t)(x) - nn.MaxPool2d(2)(x)).abs().max())
              for t in (1.0, 10.0, 1000.0)]
    assert errors[0] > errors[1] > errors[2] and errors[2] < 2e-3


def test_logsumexp_pooling_of_a_constant_window_is_that_constant_and_handles_padding_and_stride():
    x = torch.full((1, 1, 4, 4), 2.5)
    assert torch.allclose(LogSumExpPool2d(2, temperature=3.0)(x), torch.full((1, 1, 2, 2), 2.5))
    pool = nn.MaxPool2d(3, stride=2, padding=1)
    lse = LogSumExpPool2d.from_max_pool(pool, temperature=100.0)
    y = torch.randn(1, 1, 7, 7)
    assert lse(y).shape == pool(y).shape
    assert torch.allclose(lse(y), pool(y), atol=0.03)  # log(9) / 100


def test_logsumexp_pooling_rejects_bad_settings():
    with pytest.raises(ValueError, match="temperature"):
        LogSumExpPool2d(2, temperature=0.0)
    with pytest.raises(ValueError, match="ceil_mode"):
        LogSumExpPool2d.from_max_pool(nn.MaxPool2d(2, ceil_mode=True), 1.0)


def test_smooth_replaces_every_relu_and_max_pool_and_leaves_the_original_alone():
    torch.manual_seed(0)
    cnn = build("cnn").eval()
    before = {k: v.clone() for k, v in cnn.state_dict().items()}
    smoothed = smooth(cnn, beta=4.0)
    kinds = [type(m) for m in smoothed.modules()]
    assert nn.ReLU not in kinds and nn.MaxPool2d not in kinds
    assert kinds.count(nn.Softplus) == 3 and kinds.count(LogSumExpPool2d) == 2
    assert all(m.beta == 4.0 for m in smoothed.modules() if isinstance(m, nn.Softplus))
    assert all(m.temperature == 4.0 for m in smoothed.modules()
               if isinstance(m, LogSumExpPool2d))
    assert sum(isinstance(m, nn.ReLU) for m in cnn.modules()) == 3
    assert sum(isinstance(m, nn.MaxPool2d) for m in cnn.modules()) == 2
    assert all(torch.equal(before[k], v) for k, v in cnn.state_dict().items())
    only_relu = smooth(cnn, 4.0, pooling=False)
    assert sum(isinstance(m, nn.MaxPool2d) for m in only_relu.modules()) == 2


def test_smoothed_model_loads_the_trained_state_dict_and_approaches_it_for_large_beta():
    torch.manual_seed(1)
    cnn = build("cnn").eval()
    smoothed = smooth(build("cnn"), beta=200.0)
    smoothed.load_state_dict(cnn.state_dict())  # same parameter names
    x = torch.rand(3, 1, 28, 28)
    assert torch.allclose(smoothed(x), cnn(x), atol=0.5)
    assert not torch.allclose(smooth(cnn, beta=1.0)(x), cnn(x), atol=0.5)


def test_smoothed_model_keeps_its_blocks_for_randomization():
    smoothed = smooth(build("cnn"), beta=2.0)
    steps = [name for name, _ in randomize(smoothed, init="xavier")]
    assert steps == ["original", "logits", "fc1", "conv2", "conv1"]


def test_smooth_rejects_a_non_positive_beta():
    with pytest.raises(ValueError, match="beta"):
        smooth(build("mlp"), beta=0.0)


def test_smooth_reaches_the_relus_inside_inception_v3():
    from sanitylib.models.inception import untrained_inception_v3

    smoothed = smooth(untrained_inception_v3(0), beta=5.0)
    kinds = [type(m) for m in smoothed.modules()]
    assert nn.ReLU not in kinds and nn.MaxPool2d not in kinds
    assert kinds.count(nn.Softplus) > 90 and kinds.count(LogSumExpPool2d) == 2
