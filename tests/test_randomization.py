"""Parameter randomization: which parameters change at each step (issue 3)."""

from __future__ import annotations

import pytest
import torch

from sanitylib import model_under_test
from sanitylib.models.zoo import build

BLOCKS = {"cnn": {n: p[0] for n, p in model_under_test(build("cnn")).blocks.items()}}
from sanitylib.methods.randomization import INITS, randomize


def changed_blocks(model, randomized) -> set[str]:
    """Blocks with at least one parameter that differs; asserts blocks change whole or not at all."""
    reference = dict(model.named_parameters())
    changed = set()
    for name, path in BLOCKS["cnn"].items():
        flags = [not torch.equal(p, reference[f"{path}.{k}"])
                 for k, p in randomized.get_submodule(path).named_parameters()]
        assert all(flags) or not any(flags), f"block {name} changed only partly"
        if any(flags):
            changed.add(name)
    return changed


@pytest.fixture
def cnn():
    """A CNN whose weights have moved away from their initial values, as training moves them."""
    model = build("cnn")
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.01 * torch.randn_like(p))
    return model


def test_cascading_changes_exactly_the_top_k_blocks(cnn):
    names = list(BLOCKS["cnn"])
    steps = list(randomize(cnn, order="cascading", seed=3))
    assert [s for s, _ in steps] == ["original"] + names
    for k, (_, model) in enumerate(steps):
        assert changed_blocks(cnn, model) == set(names[:k])


def test_independent_changes_exactly_one_block(cnn):
    for name, model in list(randomize(cnn, order="independent"))[1:]:
        assert changed_blocks(cnn, model) == {name}


def test_bottom_up_mirrors_cascading(cnn):
    names = list(BLOCKS["cnn"])
    steps = list(randomize(cnn, order="bottom_up", seed=3))
    assert [s for s, _ in steps] == ["original"] + names[::-1]
    for k, (_, model) in enumerate(steps):
        assert changed_blocks(cnn, model) == set(names[::-1][:k])
    # A block gets the same random weights whatever the order.
    cascade_full = list(randomize(cnn, order="cascading", seed=3))[-1][1]
    for a, b in zip(cascade_full.parameters(), steps[-1][1].parameters()):
        assert torch.equal(a, b)


@pytest.mark.parametrize("init", INITS)
def test_the_callers_model_is_unchanged(cnn, init):
    before = {k: v.clone() for k, v in cnn.state_dict().items()}
    for _ in randomize(cnn, init=init):
        pass
    assert all(torch.equal(before[k], v) for k, v in cnn.state_dict().items())


def test_init_schemes_draw_from_their_distribution(cnn):
    last = {init: list(randomize(cnn, blocks=["fc1"], init=init, seed=1))[-1][1]
            for init in INITS}
    weight = {init: m.fc1[1].weight.detach() for init, m in last.items()}
    assert abs(float(weight["truncated_normal"].std()) - 0.0088) < 0.001  # 0.01 truncated at 2 sigma
    assert float(weight["uniform"].abs().max()) <= 0.01 * 3 ** 0.5
    assert abs(float(weight["uniform"].std()) - 0.01) < 0.001
    fan_in, fan_out = weight["xavier"].shape[1], weight["xavier"].shape[0]
    assert abs(float(weight["xavier"].std()) - (2 / (fan_in + fan_out)) ** 0.5) < 0.001
    assert abs(float(weight["default"].std()) - 0.088) < 0.005  # the CNN's own sigma 0.1
    assert torch.allclose(last["default"].fc1[1].bias, torch.full((1024,), 0.1))


def test_batchnorm_statistics_kept_unless_asked():
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.BatchNorm2d(2))
    model[1].running_mean.fill_(3.0)
    subject = model_under_test(model, blocks={"bn": "1", "conv": "0"})
    kept = list(randomize(subject, init="xavier"))[-1][1]
    reset = list(randomize(subject, init="xavier", batchnorm="reset"))[-1][1]
    assert torch.all(kept[1].running_mean == 3.0) and torch.all(reset[1].running_mean == 0.0)


def test_unknown_names_are_rejected(cnn):
    with pytest.raises(ValueError, match="valid choices: logits, fc1, conv2, conv1"):
        list(randomize(cnn, blocks=["fc9"]))
    with pytest.raises(ValueError, match="valid choices: cascading"):
        list(randomize(cnn, order="sideways"))
    with pytest.raises(ValueError, match="valid choices: default"):
        list(randomize(cnn, init="orthogonal"))
