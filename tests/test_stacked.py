"""Several randomized copies of a small model explained in one vectorized call (issue 15)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sanitylib.experiments.runner import randomization_run
from sanitylib.methods.randomization import randomize
from sanitylib.methods.saliency import explain_and_predict
from sanitylib.methods.stacked import STACKABLE, stacked_explain
from sanitylib.models.zoo import build


def copies() -> list[torch.nn.Module]:
    torch.manual_seed(0)
    return [model for _, model in randomize(build("cnn").eval(), seed=1)]


@pytest.mark.parametrize("max_rows", [1000, 7])
def test_each_copy_gets_its_own_maps_and_predictions(max_rows):
    models, x = copies(), torch.rand(5, 1, 28, 28)
    options = {m: {"max_rows": max_rows} for m in STACKABLE}
    options["integrated_gradients"].update(steps=6, baseline=torch.rand(5, 1, 28, 28))
    maps, predictions = stacked_explain(models, x, STACKABLE, None, options)
    for k, model in enumerate(models):
        alone, predicted = explain_and_predict(model, x, STACKABLE, None, options)
        assert torch.equal(predictions[k], predicted)
        for method in STACKABLE:
            scale = float(alone[method].abs().max())
            assert torch.allclose(maps[k][method], alone[method], atol=1e-5 * scale), method


def test_a_fixed_target_is_explained_by_every_copy():
    models, x = copies(), torch.rand(3, 1, 28, 28)
    target = torch.tensor([4, 0, 9])
    maps, _ = stacked_explain(models, x, ["gradient"], target)
    alone, _ = explain_and_predict(models[2], x, ["gradient"], target)
    assert torch.allclose(maps[2]["gradient"], alone["gradient"], atol=1e-6)


def test_methods_that_hook_into_modules_are_refused():
    with pytest.raises(ValueError, match="cannot compute \\['guided_backprop'\\]"):
        stacked_explain(copies(), torch.rand(1, 1, 28, 28), ["gradient", "guided_backprop"])


def test_a_stacked_randomization_run_scores_like_the_plain_one(tmp_path, monkeypatch):
    torch.manual_seed(0)
    model, x = build("cnn").eval(), torch.rand(3, 1, 28, 28)
    methods = ["gradient", "integrated_gradients", "gradcam"]
    settings = {"metrics": ["spearman"], "options": {"integrated_gradients": {"steps": 4}},
                "verbose": False, "seeds": (0,)}
    plain = randomization_run(model, x, methods, **settings).scores
    monkeypatch.setenv("SANITYLIB_CACHE", str(tmp_path / "another"))  # computed, not loaded
    stacked = randomization_run(model, x, methods, stack=True, **settings).scores
    np.testing.assert_allclose(stacked.value, plain.value, atol=1e-4)
