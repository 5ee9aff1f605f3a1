"""Randomization protocols (batch-norm statistics kept, reset, re-estimated) and the activation
census, against statistics and shares computed by hand."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from sanitylib.experiments.census import activation_shares, census_run
from sanitylib.methods.randomization import randomize, reestimate_batchnorm
from sanitylib.models.under_test import model_under_test


def _bn_net() -> nn.Sequential:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 2, 1), nn.BatchNorm2d(2), nn.Flatten(), nn.Linear(8, 3))
    net[1].running_mean.fill_(5.0)
    net[1].running_var.fill_(7.0)
    return net.eval()


def _subject(net: nn.Module):
    return model_under_test(net, blocks={"logits": "3", "bn": "1", "conv": "0"})


CALIBRATION = torch.arange(24, dtype=torch.float32).reshape(6, 1, 2, 2) / 10


def _by_hand(conv: nn.Conv2d) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and unbiased variance per channel of the conv's outputs on CALIBRATION."""
    with torch.no_grad():
        out = conv(CALIBRATION).transpose(0, 1).reshape(2, -1)
    return out.mean(1), out.var(1, unbiased=True)


@pytest.mark.parametrize("order", ["cascading", "independent"])
def test_reestimated_statistics_are_the_calibration_statistics(order):
    steps = dict(randomize(_subject(_bn_net()), order=order, init="xavier", seed=3,
                           batchnorm="reestimated", calibration=CALIBRATION))
    for step in ("bn", "conv"):
        model = steps[step]
        mean, var = _by_hand(model[0])
        assert torch.allclose(model[1].running_mean, mean, atol=1e-6)
        assert torch.allclose(model[1].running_var, var, atol=1e-6)
        assert not model[1].training and model[1].momentum == 0.1
    # above the lowest randomized block only: randomizing the logits leaves the statistics
    assert torch.all(steps["logits"][1].running_mean == 5.0)
    assert torch.all(steps["original"][1].running_var == 7.0)


def test_kept_and_reset_statistics():
    kept = dict(randomize(_subject(_bn_net()), init="xavier"))
    reset = dict(randomize(_subject(_bn_net()), init="xavier", batchnorm="reset"))
    assert torch.all(kept["conv"][1].running_mean == 5.0)
    assert torch.all(reset["conv"][1].running_mean == 0.0)
    assert torch.all(reset["conv"][1].running_var == 1.0)
    # reset touches the randomized blocks only: in "logits" the batch norm is not yet randomized
    assert torch.all(reset["logits"][1].running_mean == 5.0)


def test_reestimation_needs_calibration_inputs_and_names_the_choices():
    with pytest.raises(ValueError, match="calibration inputs are needed"):
        list(randomize(_subject(_bn_net()), batchnorm="reestimated"))
    with pytest.raises(ValueError, match="valid choices: kept, reestimated, reset"):
        list(randomize(_subject(_bn_net()), batchnorm="frozen"))
    with pytest.raises(ValueError, match="needs calibration"):
        reestimate_batchnorm(_bn_net(), ["1"], CALIBRATION[:0])


class _Known(nn.Module):
    """Rectifier outputs fixed by hand: ReLU6 of (-1, 0.5, 7, 9) and F.relu of (-2, 3)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        first = nn.functional.relu6(x[:, :4])
        second = torch.relu(x[:, 4:6])
        return torch.cat([first, second], dim=1)


def test_census_counts_clamped_outputs_and_logit_spread():
    x = torch.tensor([[-1.0, 0.5, 7.0, 9.0, -2.0, 3.0],
                      [-1.0, 0.5, 7.0, 9.0, -2.0, 5.0]])
    census = activation_shares(_Known(), x)
    assert census.rectifier_values == 6  # per input
    assert census.share_zero == pytest.approx((2 / 6, 2 / 6))  # -1 and -2 in each row
    assert census.share_upper == pytest.approx((2 / 4, 2 / 4))  # only ReLU6 has an upper clamp
    # logits differ across inputs only in the last column: std of (3, 5) over 6 classes
    assert census.logit_std == pytest.approx(math.sqrt(2) / 6)


def test_census_of_a_constant_network_is_collapsed_and_of_no_rectifier_is_nan():
    constant = nn.Sequential(nn.Linear(3, 2))
    with torch.no_grad():
        constant[0].weight.zero_()
        constant[0].bias.copy_(torch.tensor([1.0, -1.0]))
    census = activation_shares(constant, torch.randn(4, 3))
    assert census.logit_std == 0.0 and census.logit_std_relative == 0.0
    assert math.isnan(census.share_zero[0]) and census.rectifier_values == 0
    with pytest.raises(ValueError, match="at least 2 inputs"):
        activation_shares(constant, torch.randn(1, 3))


def test_census_run_covers_every_step_and_seed():
    table = census_run(_subject(_bn_net()), CALIBRATION, seeds=[0, 1], batchnorm="reestimated",
                       calibration=CALIBRATION, labels={"architecture": "tiny"})
    assert len(table) == 2 * 4 * len(CALIBRATION)
    assert list(table["block"][::len(CALIBRATION)][:4]) == ["original", "logits", "bn", "conv"]
    assert set(table["architecture"]) == {"tiny"} and set(table["batchnorm"]) == {"reestimated"}


def test_with_relu_replaces_every_relu6_and_keeps_the_original():
    from sanitylib.experiments.protocols import with_relu

    net = nn.Sequential(nn.Linear(2, 2), nn.ReLU6(), nn.Sequential(nn.Linear(2, 2), nn.ReLU6()))
    changed = with_relu(net)
    assert [type(m).__name__ for m in changed.modules()].count("ReLU") == 2
    assert not any(isinstance(m, nn.ReLU6) for m in changed.modules())
    assert isinstance(net[1], nn.ReLU6)  # a copy was changed
    x = torch.full((1, 2), 10.0)
    assert torch.equal(changed[0](x), net[0](x))
    with pytest.raises(ValueError, match="no nn.ReLU6"):
        with_relu(nn.Sequential(nn.Linear(2, 2), nn.ReLU()))


def test_explanations_name_the_verdicts_a_protocol_changes():
    import pandas as pd

    from sanitylib.experiments.protocols import explanations

    claims = pd.DataFrame({
        "protocol": ["kept", "kept", "reset", "reset"], "model": "m", "dataset": "d",
        "metric": "spearman_abs", "method": ["gradient", "guided_backprop"] * 2,
        "verdict": ["agrees", "differs", "agrees", "agrees"]})
    table = explanations(claims)
    assert list(table["changed"]) == [False, True]
    assert table.loc[table.changed, "explanation"].item() == "batch-norm statistics"


def test_explanation_summary_names_changes_and_what_no_factor_explains():
    import pandas as pd

    from sanitylib.experiments.protocols import explanation_summary

    claims = pd.DataFrame({
        "protocol": ["kept", "kept", "kept", "reset", "reset", "reset"], "model": "m",
        "dataset": "d", "metric": "spearman_abs",
        "method": ["gradient", "guided_backprop", "gradcam"] * 2,
        "verdict": ["agrees", "differs", "differs", "agrees", "agrees", "differs"]})
    text = explanation_summary(claims, {"guided_backprop": "Guided BackProp", "gradcam": "GradCAM"})
    assert "changes Guided BackProp (differs → agrees under statistics reset (Quantus))" in text
    assert text.endswith("**Not explained** by any factor tested here: GradCAM.")
