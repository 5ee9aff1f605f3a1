"""The method and metric registries (issue 24): one spec per method and per metric, and a user's
own method or metric running through explain, the randomization runner, check and the command."""

from __future__ import annotations

import inspect
import json
import textwrap

import numpy as np
import pytest
import torch
from torch import nn

import sanitylib
from sanitylib.checker.run import check
from sanitylib.cli import main
from sanitylib.experiments.claims import similarity_reading
from sanitylib.experiments.parameter_randomization import PAPER_FINDINGS, methods_for
from sanitylib.experiments.runner import randomization_run
from sanitylib.methods.registry import (
    ALL_METHODS,
    EXECUTION,
    LABELS,
    METHODS,
    method_names,
    method_spec,
    options_for,
)
from sanitylib.methods.saliency import explain
from sanitylib.methods.similarity import METRIC_RANGES, compare, lower_is_similar, metric_spec
from sanitylib.methods.stacked import STACKABLE
from sanitylib.models.mnist import MLP, MnistCNN

PLUGIN = textwrap.dedent('''
    import torch
    import sanitylib

    def absolute_gradient(model, inputs, targets, *, power=1.0):
        """|d logit / d input| ** power: a method defined outside the library."""
        x = inputs.clone().requires_grad_()
        with torch.enable_grad():
            logits = model(x)
            (grad,) = torch.autograd.grad(logits.gather(1, targets[:, None]).sum(), x)
        return grad.abs() ** power

    def mean_absolute_difference(a, b):
        a, b = torch.as_tensor(a).flatten(1), torch.as_tensor(b).flatten(1)
        return (a - b).abs().mean(1).double().numpy()

    sanitylib.register_method("absolute_gradient", absolute_gradient, label="|Gradient|",
                              settings={"power": 1.0})
    sanitylib.register_metric("mean_absolute_difference", mean_absolute_difference,
                              label="mean |a - b|", score_direction="lower",
                              score_range=(0.0, float("inf")))
''')


@pytest.fixture
def plugin(tmp_path):
    """The plugin module written to a file and imported; unregistered afterwards."""
    path = tmp_path / "my_methods.py"
    path.write_text(PLUGIN)
    namespace: dict[str, object] = {}
    exec(compile(PLUGIN, str(path), "exec"), namespace)  # noqa: S102 - the test's own plugin
    yield path, namespace
    sanitylib.unregister_method("absolute_gradient")
    sanitylib.unregister_metric("mean_absolute_difference")


def test_every_table_is_derived_from_the_specs():
    assert METHODS == ALL_METHODS[:9] and set(METHODS) == set(PAPER_FINDINGS)
    assert STACKABLE == ("gradient", "gradient_x_input", "integrated_gradients")
    assert dict(LABELS)["gradient_x_input"] == "Gradient ⊙ Input"
    assert [m for m in ALL_METHODS if method_spec(m).seeded] == [
        "smoothgrad", "ig_smoothgrad", "vargrad", "gradient_shap"]
    assert methods_for(MLP(), METHODS) == [m for m in METHODS if "gradcam" not in m]
    assert methods_for(MnistCNN(), METHODS) == list(METHODS)
    assert options_for(["integrated_gradients", "smoothgrad", "gradient"], steps=5, samples=7) == {
        "integrated_gradients": {"steps": 5}, "smoothgrad": {"samples": 7}, "gradient": {}}


@pytest.mark.parametrize("name", ALL_METHODS)
def test_every_built_in_function_takes_its_settings(name):
    spec = method_spec(name)
    parameters = inspect.signature(spec.function).parameters
    assert all(s.name in parameters for s in spec.settings), name
    assert "max_rows" in parameters
    assert spec.resolve()["max_rows"] is None and set(spec.defaults) >= {e.name for e in EXECUTION}


def test_metric_specs_carry_their_direction_and_range():
    assert lower_is_similar("l2_distance") and not lower_is_similar("ssim")
    assert not lower_is_similar("no_such_metric")
    assert METRIC_RANGES["l2_distance"] == (0.0, float("inf"))
    assert metric_spec("hog").features is not None and metric_spec("ssim").features is None
    with pytest.raises(ValueError, match="unknown metric 'ssim2'; valid choices: spearman_abs"):
        compare(np.zeros((1, 4, 4)), np.zeros((1, 4, 4)), "ssim2")


def test_a_registered_method_runs_through_explain_and_the_runner(plugin):
    _, namespace = plugin
    model, x = MnistCNN().eval(), torch.rand(3, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    gradient = explain(model, x, "gradient")
    assert torch.allclose(explain(model, x, "absolute_gradient"), gradient.abs())
    assert torch.allclose(explain(model, x, "absolute_gradient", power=2.0), gradient ** 2)
    assert "absolute_gradient" in method_names("registered") and LABELS["absolute_gradient"] == "|Gradient|"
    with pytest.raises(ValueError, match=r"absolute_gradient takes no setting\(s\) \['steps'\]; "
                                         "its settings: power, max_rows, memory_mb"):
        explain(model, x, "absolute_gradient", steps=3)
    run = randomization_run(model, x, ["gradient", "absolute_gradient"], blocks=["logits", "fc1"],
                            metrics=["spearman_abs", "mean_absolute_difference"], verbose=False)
    scores = run.scores.set_index(["method", "metric", "block", "image"])["value"]
    # Spearman of absolute maps cannot tell |gradient| from the gradient: the same numbers
    assert np.allclose(scores.loc["gradient", "spearman_abs"].values,
                       scores.loc["absolute_gradient", "spearman_abs"].values)
    assert (scores.loc["absolute_gradient", "mean_absolute_difference", "original"] == 0).all()
    assert callable(namespace["absolute_gradient"])


def test_a_registered_method_and_metric_run_through_check_and_the_command(plugin, tmp_path):
    path, _ = plugin
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Flatten(),
                          nn.Linear(4 * 8 * 8, 3))
    x = torch.rand(4, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    report = check(model, x, methods=["absolute_gradient", "gradient"],
                   metrics=["spearman_abs", "mean_absolute_difference"])
    assert set(report.verdicts.method) == {"absolute_gradient", "gradient"}
    distance = report.verdicts[report.verdicts.metric == "mean_absolute_difference"]
    assert (distance.random_low >= 0).all()
    # the decision rule reads a registered distance with lower meaning more similar
    assert similarity_reading(0.1, 0.2, 10, 1.0, 0.9, metric="mean_absolute_difference")[0] \
        == "still similar"
    torch.save(x, tmp_path / "x.pt")
    scripted = tmp_path / "scripted.pt"
    torch.jit.save(torch.jit.script(model), scripted)
    out = tmp_path / "report"
    sanitylib.unregister_method("absolute_gradient")  # --import registers them again
    sanitylib.unregister_metric("mean_absolute_difference")
    assert main(["check", str(scripted), str(tmp_path / "x.pt"), "--out", str(out),
                 "--import", str(path), "--methods", "absolute_gradient", "--metrics",
                 "spearman_abs,mean_absolute_difference", "--max-inputs", "4",
                 "--init", "xavier"]) == 0
    verdict = json.loads((out / "verdict.json").read_text())
    assert {v["method"] for v in verdict["verdicts"]} == {"absolute_gradient"}
    assert "|Gradient|" in (out / "report.html").read_text()


def test_registration_refuses_what_would_be_ambiguous(plugin, tmp_path):
    with pytest.raises(ValueError, match="registered already"):
        sanitylib.register_method("gradient", lambda m, x, t: x)
    with pytest.raises(ValueError, match="registered already; choose another name or pass replace"):
        sanitylib.register_method("absolute_gradient", lambda m, x, t: x)
    with pytest.raises(ValueError, match="the library's"):
        sanitylib.register_method("chunked", lambda m, x, t, **kw: x, settings={"max_rows": 3})
    with pytest.raises(ValueError, match="built in and cannot be unregistered"):
        sanitylib.unregister_method("gradient")
    sanitylib.register_method("wrong_shape", lambda model, x, targets: x[:, :1].sum(1))
    try:
        with pytest.raises(ValueError, match="must return maps shaped like its inputs"):
            explain(MLP(), torch.rand(2, 1, 28, 28), "wrong_shape")
    finally:
        sanitylib.unregister_method("wrong_shape")
    assert main(["check", "cnn", str(tmp_path), "--out", str(tmp_path / "r"), "--import",
                 "no_such_module_here"]) == 2


def test_a_config_object_gives_the_keywords_run():
    from sanitylib.experiments.runner import RandomizationConfig

    model, x = MnistCNN().eval(), torch.rand(2, 1, 28, 28, generator=torch.Generator().manual_seed(2))
    config = RandomizationConfig(("gradient", "smoothgrad"), seeds=(0, 1), metrics=("ssim",),
                                 options=options_for(["smoothgrad"], samples=2))
    by_config = randomization_run(model, x, config, verbose=False).scores
    by_keywords = randomization_run(model, x, ["gradient", "smoothgrad"], seeds=[0, 1],
                                    metrics=["ssim"], options={"smoothgrad": {"samples": 2}},
                                    verbose=False).scores
    assert by_config.equals(by_keywords) and len(by_config) == 2 * 5 * 2 * 2
    assert randomization_run(model, x, config, seeds=(3,), verbose=False).scores.seed.unique() == [3]
    with pytest.raises(ValueError, match="unknown method 'gradients'; valid choices: gradient"):
        RandomizationConfig(("gradients",))
    with pytest.raises(ValueError, match="unknown target 'argmax'; valid choices: recompute, fixed"):
        RandomizationConfig(("gradient",), target="argmax")
    with pytest.raises(ValueError, match="unknown metric"):
        RandomizationConfig(("gradient",), metrics=("ssim", "psnr"))


def test_a_re_registered_default_gives_other_cached_maps():
    from sanitylib.experiments.runner import explain_cached

    def scaled(model, inputs, targets, *, k=1.0):
        return inputs * k

    model, x = MLP().eval(), torch.rand(2, 1, 28, 28)
    sanitylib.register_method("scaled", scaled, settings={"k": 1.0})
    try:
        one = explain_cached(model, x, ["scaled"])["scaled"]
        sanitylib.register_method("scaled", scaled, settings={"k": 2.0}, replace=True)
        two = explain_cached(model, x, ["scaled"])["scaled"]
    finally:
        sanitylib.unregister_method("scaled")
    assert torch.allclose(two, 2 * one)


def test_whole_numbers_are_converted_and_others_refused():
    model, x = MnistCNN().eval(), torch.rand(2, 1, 28, 28, generator=torch.Generator().manual_seed(6))
    assert torch.equal(explain(model, x, "integrated_gradients", steps=5.0),
                       explain(model, x, "integrated_gradients", steps=5))
    assert torch.equal(explain(model, x, "ig_smoothgrad", steps=2, samples=2.0, seed=1.0),
                       explain(model, x, "ig_smoothgrad", steps=2, samples=2, seed=1))
    with pytest.raises(ValueError, match="steps must be a whole number for integrated_gradients, "
                                         "got 5.5"):
        explain(model, x, "integrated_gradients", steps=5.5)


def test_a_registered_metric_gets_numpy_arrays(plugin):
    seen = []

    def kinds(a, b):
        seen.append((type(a), a.dtype))
        return np.zeros(len(a))

    sanitylib.register_metric("kinds", kinds)
    try:
        compare(torch.rand(2, 1, 4, 4), torch.rand(2, 1, 4, 4), "kinds")
    finally:
        sanitylib.unregister_metric("kinds")
    assert seen == [(np.ndarray, np.float64)]


def test_an_imported_plugin_may_hold_dataclasses(tmp_path):
    from sanitylib.cli import _import_plugins

    path = tmp_path / "with_dataclass.py"
    path.write_text("from __future__ import annotations\nfrom dataclasses import dataclass\n\n"
                    "@dataclass\nclass Options:\n    k: int = 1\n")
    _import_plugins([str(path)])
    import sys

    assert sys.modules["with_dataclass"].Options().k == 1
    del sys.modules["with_dataclass"]


def test_a_config_names_the_valid_orders_inits_and_keywords():
    from sanitylib.experiments.runner import RandomizationConfig

    with pytest.raises(ValueError, match="unknown order 'cascade'; valid choices: cascading"):
        RandomizationConfig(("gradient",), order="cascade")
    with pytest.raises(ValueError, match="unknown batchnorm 'fresh'; valid choices: kept"):
        RandomizationConfig(("gradient",), batchnorm="fresh")
    with pytest.raises(TypeError, match=r"unknown setting\(s\) \['seed'\]; valid: methods, order"):
        randomization_run(MLP(), torch.rand(1, 1, 28, 28), ["gradient"], seed=3)
