"""No wasted passes, bounded memory and per-image baselines (issue 15).

Pass counts are exact: they come from a hook on the model (:mod:`sanitylib.infra.passes`), and
the minimum a computation needs is written out by hand in each test.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from sanitylib.experiments.runner import randomization_run
from sanitylib.infra.passes import counting_passes
from sanitylib.methods.registry import options_for
from sanitylib.methods.saliency import (
    explain,
    explain_and_predict,
    explain_methods,
    predicted_class,
)
from sanitylib.models.zoo import build


def small_cnn() -> nn.Module:
    torch.manual_seed(0)
    return build("cnn")


def test_gradient_and_gradient_x_input_share_one_gradient():
    model, x = small_cnn(), torch.rand(5, 1, 28, 28)
    with counting_passes(model) as count:
        maps = explain_methods(model, x, ["gradient", "gradient_x_input"])
    # one gradient pass for both methods, whose forward also gives the target
    assert (count.prediction_rows, count.gradient_rows) == (0, 5)
    assert torch.equal(maps["gradient_x_input"], maps["gradient"] * x)
    assert torch.equal(maps["gradient"], explain(model, x, "gradient"))


def test_smoothgrad_and_vargrad_share_their_noisy_passes():
    model, x = small_cnn(), torch.rand(3, 1, 28, 28)
    target = torch.tensor([1, 2, 3])
    options = {m: {"samples": 4, "seed": 2} for m in ("smoothgrad", "vargrad")}
    with counting_passes(model) as count:
        maps = explain_methods(model, x, ["smoothgrad", "vargrad"], target, options)
    # 3 images x 4 noisy copies, once for both (SmoothGrad listed first all the same)
    assert count.gradient_rows == 3 * 4
    for method in ("smoothgrad", "vargrad"):
        alone = explain(model, x, method, target=target, samples=4, seed=2)
        assert torch.equal(maps[method], alone)
    # different noise settings are different passes
    options["vargrad"]["seed"] = 3
    with counting_passes(model) as count:
        explain_methods(model, x, ["smoothgrad", "vargrad"], target, options)
    assert count.gradient_rows == 2 * 3 * 4


def test_gradient_x_input_measures_the_input_from_its_baseline():
    model, x = small_cnn(), torch.rand(2, 1, 28, 28)
    maps = explain_methods(model, x, ["gradient", "gradient_x_input"],
                           options={"gradient_x_input": {"baseline": -0.5}})
    assert torch.allclose(maps["gradient_x_input"], maps["gradient"] * (x + 0.5))


def test_guided_gradcam_reuses_guided_backprop_and_gradcam():
    model, x = small_cnn(), torch.rand(4, 1, 28, 28)
    target = torch.tensor([0, 1, 2, 3])
    with counting_passes(model) as alone:
        explain(model, x, "guided_gradcam", target=target)
    with counting_passes(model) as together:
        maps = explain_methods(model, x, ["guided_backprop", "gradcam", "guided_gradcam"],
                               target)
    assert together.gradient_rows == alone.gradient_rows
    assert torch.allclose(maps["guided_gradcam"], maps["guided_backprop"] * maps["gradcam"])


def test_ig_smoothgrad_never_has_more_rows_in_flight_than_max_rows():
    model, x = small_cnn(), torch.rand(2, 1, 28, 28)
    with counting_passes(model) as count:
        bounded = explain(model, x, "ig_smoothgrad", target=1, steps=10, samples=6, max_rows=7)
    assert count.largest_pass <= 7
    assert count.gradient_rows == 2 * 6 * 10
    # the same numbers as with every row of an image in one pass
    assert torch.allclose(bounded, explain(model, x, "ig_smoothgrad", target=1, steps=10,
                                           samples=6, max_rows=1000), atol=1e-6)


def test_memory_mb_bounds_the_rows_of_every_noisy_method():
    model, x = small_cnn(), torch.rand(3, 1, 28, 28)
    # 28 x 28 float32 rows at 200 bytes of activations per input byte: 1 MB holds 1 row
    for method in ("smoothgrad", "vargrad", "ig_smoothgrad", "integrated_gradients"):
        with counting_passes(model) as count:
            explain(model, x, method, target=0, memory_mb=1.0,
                    **options_for([method], steps=4, samples=3)[method])
        assert count.largest_pass == 1, method


@pytest.mark.parametrize("method", ["integrated_gradients", "ig_smoothgrad"])
def test_per_image_baselines_equal_a_loop_over_images(method):
    model, x = small_cnn(), torch.rand(3, 1, 28, 28)
    baselines = torch.rand(3, 1, 28, 28)
    settings = {**options_for([method], steps=6, samples=3)[method], "target": 2}
    together = explain(model, x, method, baseline=baselines, **settings)
    # image i of a call draws noise from seed + i: the loop passes that seed explicitly
    looped = torch.cat([explain(model, x[i:i + 1], method, baseline=baselines[i:i + 1],
                                **settings, **options_for([method], seed=i)[method])
                        for i in range(3)])
    assert torch.allclose(together, looped, atol=1e-6)


def test_a_baseline_of_the_wrong_shape_names_the_valid_shapes():
    with pytest.raises(ValueError, match=r"one per input \(3, 1, 28, 28\)"):
        explain(small_cnn(), torch.rand(3, 1, 28, 28), "integrated_gradients",
                baseline=torch.zeros(2, 1, 28, 28))


def test_predictions_come_from_the_gradient_pass_or_from_one_prediction_pass():
    model, x = small_cnn(), torch.rand(4, 1, 28, 28)
    with counting_passes(model) as fused:
        _, predictions = explain_and_predict(model, x, ["gradient"], target=3)
    assert (fused.prediction_rows, fused.gradient_rows) == (0, 4)
    assert torch.equal(predictions, predicted_class(model, x))
    with counting_passes(model) as separate:
        _, again = explain_and_predict(model, x, ["gradcam"], target=3)
    assert (separate.prediction_rows, separate.gradient_rows) == (4, 4)
    assert torch.equal(again, predictions)


@pytest.mark.parametrize("method", ["gradcam", "integrated_gradients", "smoothgrad", "guided_backprop"])
def test_explain_with_a_given_target_makes_no_prediction_pass(method):
    model, x = small_cnn(), torch.rand(4, 1, 28, 28)
    options = options_for([method], steps=2, samples=2)
    explain(model, x, method, target=3, **options[method])  # Guided Backprop's census, once
    with counting_passes(model) as count:
        explain(model, x, method, target=3, **options[method])
        explain_methods(model, x, [method, "gradient"], target=3, options=options)
    assert count.prediction_rows == 0


def test_unknown_settings_are_refused_with_the_valid_ones():
    with pytest.raises(ValueError, match=r"takes no setting\(s\) \['step'\]; its settings: "
                                         "steps, baseline, multiply_by_inputs, max_rows"):
        explain_methods(small_cnn(), torch.rand(1, 1, 28, 28), ["integrated_gradients"],
                        options={"integrated_gradients": {"step": 3}})
    with pytest.raises(ValueError, match=r"gradient takes no setting\(s\) \['samples'\]"):
        explain(small_cnn(), torch.rand(1, 1, 28, 28), "gradient", samples=3)


def test_a_randomization_run_makes_the_minimum_number_of_passes():
    model, x = small_cnn(), torch.rand(3, 1, 28, 28)
    methods = ["gradient", "gradient_x_input", "integrated_gradients", "guided_backprop",
               "gradcam", "guided_gradcam"]
    seeds, steps = (0, 1), 4
    with counting_passes(model) as count:
        run = randomization_run(model, x, methods, seeds=seeds, metrics=["spearman"],
                                options={"integrated_gradients": {"steps": steps}},
                                verbose=False)
    randomized_steps = len(run.steps) - 1
    models = 1 + len(seeds) * randomized_steps  # the original once, then every seed's steps
    # per model and image: gradient (shared with Gradient x Input; its forward pass gives the
    # step's prediction and target), IG's steps, Guided Backprop and GradCAM (shared with
    # Guided GradCAM); no prediction pass
    # Guided Backprop's one-row activation census (no gradients), once per module: the trained
    # model, and the one copy each seed randomizes step by step
    census = 1 + len(seeds)
    assert count.prediction_rows == census
    assert count.gradient_rows == models * 3 * (1 + steps + 1 + 1)
    # another order of the same model, inputs and methods reuses the original model's maps
    randomization_run(model, x, ["gradient"], seeds=(5,), metrics=["spearman"], verbose=False)
    with counting_passes(model) as other_order:
        randomization_run(model, x, ["gradient"], seeds=(5,), order="independent",
                          metrics=["spearman"], verbose=False)
    assert (other_order.prediction_rows, other_order.gradient_rows) == (0, randomized_steps * 3)
    with counting_passes(model) as again:
        randomization_run(model, x, ["gradient"], seeds=(5,), order="independent",
                          metrics=["spearman"], verbose=False)
    assert again.rows == 0  # all cached now
