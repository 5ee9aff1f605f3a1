"""Sanity-check a user's own model: :func:`check` runs the tests and returns a :class:`CheckReport`.

The model parameter randomization test of Adebayo et al. (2018), "Sanity Checks for Saliency
Maps" (https://arxiv.org/abs/1810.03292), Section 4 (cascading, independent or bottom-up
re-initialization of the model's blocks), and, with ``compare_with``, the data randomization
test of Section 5 (the same inputs explained by two models, e.g. one trained on permuted
labels). Every method's similarity after the last step is judged against the band of two
unrelated random maps of the same size, as in the book's chapters.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import torch
from torch import nn

from sanitylib.checker.html import render, write_report
from sanitylib.checker.verdicts import (
    PRIMARY_METRIC,
    VERDICT_MEANING,
    answer,
    change_words,
    read_verdicts,
)
from sanitylib.experiments.parameter_randomization import PAPER_FINDINGS, against_random
from sanitylib.experiments.runner import (
    DEFAULT_METRICS,
    baseline_table,
    explain_cached,
    pair_scores,
    randomization_run,
    summarize_scores,
)
from sanitylib.infra.device import resolve_device
from sanitylib.methods.guided import UnguidedActivationError
from sanitylib.methods.randomization import INITS, ORDERS, step_names
from sanitylib.methods.registry import method_names, method_spec, options_for
from sanitylib.methods.saliency import explain
from sanitylib.methods.similarity import metric_names
from sanitylib.models.discovery import discover_blocks, last_conv_layer
from sanitylib.models.loading import is_torchscript
from sanitylib.models.under_test import ModelUnderTest, built_in_defaults, model_under_test

__all__ = ["DEFAULT_METHODS", "LOGITS_RULES", "CheckReport", "check",
           "finite_inputs", "logits_model", "prepare_model", "runnable_methods",
           "validate"]

DEFAULT_METHODS = ("gradient", "gradient_x_input", "integrated_gradients", "smoothgrad",
                   "guided_backprop", "gradcam", "guided_gradcam")
@dataclass
class CheckReport:
    """What :func:`check` found; ``write(folder)`` and ``to_html(path)`` save it."""

    model: str
    settings: dict[str, object]
    blocks: list[str]
    steps: list[str]
    methods: list[str]
    #: One row per (test, method, block, metric, seed, image), the book's tidy columns.
    scores: pd.DataFrame
    #: The random-map band per metric.
    baseline: pd.DataFrame
    #: One row per (test, method, metric): final similarity, interval, band, verdict.
    verdicts: pd.DataFrame
    #: Methods that could not be computed on this model, with the reason.
    refused: dict[str, str] = field(default_factory=dict)
    #: ``maps[step][method]`` of the first input for the first seed, for the mask grid.
    maps: dict[str, dict[str, torch.Tensor]] = field(default_factory=dict)
    image: torch.Tensor | None = None
    summary: pd.DataFrame | None = None

    def verdict_records(self) -> list[dict[str, object]]:
        """One JSON-ready entry per test, method and metric."""
        columns = ["test", "method", "metric", "mean", "low", "high", "n", "n_seeds",
                   "random_low", "random_high", "boundary", "verdict", "reason", "paper"]
        records = self.verdicts[columns].to_dict(orient="records")
        for record in records:
            record["meaning"] = VERDICT_MEANING[record["verdict"]]
        return records

    def answers(self) -> list[dict[str, object]]:
        """One answer per test and method: the verdict on the primary metric (the paper's,
        Spearman of absolute maps, where it was computed), its n and what it means."""
        metrics = list(dict.fromkeys(self.verdicts["metric"]))
        primary = PRIMARY_METRIC if PRIMARY_METRIC in metrics else metrics[0]
        rows = self.verdicts[self.verdicts.metric == primary]
        return [{"test": r["test"], "method": r["method"], "metric": primary,
                 "verdict": r["verdict"], "mean": r["mean"], "low": r["low"], "high": r["high"],
                 "n": int(r["n"]), "n_seeds": int(r["n_seeds"]), "boundary": r["boundary"],
                 "reason": r["reason"],
                 "answer": answer(r, change_words(r["test"], self.steps[-1]))}
                for r in rows.to_dict("records")]

    def to_html(self, path: str | Path) -> Path:
        path = Path(path)
        path.write_text(render(self), encoding="utf-8")
        return path

    def write(self, folder: str | Path) -> Path:
        """``report.html``, ``scores.csv`` and ``verdict.json`` in ``folder``, written to a
        temporary sibling folder first and renamed at the end, so an interrupted run leaves no
        report that looks complete."""
        return write_report(self, Path(folder))


def prepare_model(model: ModelUnderTest | nn.Module, sample: torch.Tensor,
                  blocks: Sequence[str] | None = None, gradcam_layer: str | None = None,
                  preprocess: Callable[[torch.Tensor], torch.Tensor] | None = None
                  ) -> ModelUnderTest:
    """A model under test for any module: a built-in's own description, or blocks found by
    :func:`sanitylib.models.discovery.discover_blocks` (``blocks`` selects some of them, or names
    any submodule paths) and the last conv layer for GradCAM."""
    if isinstance(model, ModelUnderTest):
        subject = model
    else:
        if built_in_defaults(model) is not None:
            subject = model_under_test(model)
        else:
            found = discover_blocks(model, sample)
            layer = None if is_torchscript(model) else last_conv_layer(model, sample)
            subject = model_under_test(model, blocks=found, gradcam_layer=layer,
                                       name=type(model).__name__)
    if blocks:
        known = [b for b in blocks if b in subject.blocks]
        subject = (subject.select_blocks(blocks) if len(known) == len(blocks)
                   else model_under_test(subject, blocks=list(blocks)))
    if gradcam_layer is not None:
        subject = model_under_test(subject, gradcam_layer=gradcam_layer)
    if preprocess is not None:
        subject = model_under_test(subject, preprocess=preprocess)
    return subject


def _first_output(module: nn.Module, args: tuple, output: object) -> torch.Tensor:
    return output[0]


def _logits_entry(module: nn.Module, args: tuple, output: object) -> torch.Tensor:
    return output["logits"]


#: How the logits are taken from what a model returns (documented in :func:`logits_model`).
LOGITS_RULES = {"tuple": _first_output, "mapping": _logits_entry}
WRAP_ADVICE = ("wrap it so that forward returns the logits, e.g. "
               "class Logits(nn.Module): forward(x) -> model(x)[...]")


def logits_model(model: nn.Module, sample: torch.Tensor) -> nn.Module:
    """``model``, made to return logits ``(N, classes)`` by a documented rule when it returns
    something else: a tuple or list whose first item is a tensor gives that item (torchvision's
    Inception outputs, models that return ``(logits, features)``); a mapping with a ``"logits"``
    tensor gives it (Hugging Face's ``ModelOutput``). The rule is a forward hook, so block and
    layer names are unchanged. Anything else raises ValueError saying how to wrap the model.
    The model's outputs on ``sample`` must be finite (ValueError otherwise)."""
    with torch.no_grad():
        output = model(sample)
    rule = None
    if isinstance(output, (tuple, list)) and output and isinstance(output[0], torch.Tensor):
        rule = "tuple"
    elif isinstance(output, Mapping) and isinstance(output.get("logits"), torch.Tensor):
        rule = "mapping"
    elif not isinstance(output, torch.Tensor):
        raise ValueError(f"the model returns a {type(output).__name__}, not logits; "
                         + WRAP_ADVICE)
    if rule is not None:
        try:
            model.register_forward_hook(LOGITS_RULES[rule])
        except (RuntimeError, AttributeError):
            raise ValueError(f"the model returns a {type(output).__name__} and takes no forward "
                             "hook (TorchScript); " + WRAP_ADVICE) from None
        with torch.no_grad():
            output = model(sample)
    if output.ndim != 2:
        raise ValueError(f"the model returns shape {tuple(output.shape)}; logits (N, classes) "
                         "are needed")
    bad = int((~torch.isfinite(output)).any(1).sum())
    if bad:
        raise ValueError(f"the model's outputs hold NaN or infinite values for {bad} of "
                         f"{len(output)} inputs")
    return model


def finite_inputs(inputs: torch.Tensor) -> None:
    """ValueError when ``inputs`` hold NaN or infinite values, with how many inputs do."""
    bad = int((~torch.isfinite(inputs)).reshape(len(inputs), -1).any(1).sum())
    if bad:
        raise ValueError(f"the inputs hold NaN or infinite values ({bad} of {len(inputs)} inputs)")


def validate(methods: Sequence[str], order: str, init: str, metrics: Sequence[str]) -> None:
    """Raise ValueError naming the valid choices for any unknown method, order, init or metric."""
    for what, given, valid in (("method", methods, method_names()),
                               ("metric", metrics, metric_names())):
        unknown = [g for g in given if g not in valid]
        if unknown:
            raise ValueError(f"unknown {what}(s) {', '.join(unknown)}; valid choices: "
                             f"{', '.join(valid)}")
    if order not in ORDERS:
        raise ValueError(f"unknown order {order!r}; valid choices: {', '.join(ORDERS)}")
    if init not in INITS:
        raise ValueError(f"unknown init {init!r}; valid choices: {', '.join(INITS)}")


def runnable_methods(subject: ModelUnderTest, inputs: torch.Tensor, methods: Sequence[str],
              options: Mapping[str, Mapping[str, object]]) -> tuple[list[str], dict[str, str]]:
    """The methods that compute on this model, and why each of the others cannot."""
    ok, refused = [], {}
    for method in methods:
        spec = method_spec(method)
        if is_torchscript(subject.module) and spec.needs_hooks:
            refused[method] = "needs hooks inside the model, which a TorchScript module does not run"
            continue
        if spec.needs_conv_layer and subject.gradcam_layer is None:
            refused[method] = "the model has no conv layer for GradCAM (give gradcam_layer)"
            continue
        try:
            explain(subject, inputs[:1], method, **dict(options.get(method, {})))
        except (UnguidedActivationError, ValueError, RuntimeError, NotImplementedError) as error:
            refused[method] = " ".join(line.strip() for line in str(error).splitlines())[:400]
            continue
        ok.append(method)
    return ok, refused


def check(model: ModelUnderTest | nn.Module, inputs: torch.Tensor, *,
          methods: Sequence[str] = DEFAULT_METHODS, order: str = "cascading",
          seeds: Sequence[int] = (0,), init: str = "default",
          metrics: Sequence[str] = DEFAULT_METRICS, blocks: Sequence[str] | None = None,
          gradcam_layer: str | None = None,
          preprocess: Callable[[torch.Tensor], torch.Tensor] | None = None,
          target: str = "recompute", ig_steps: int = 10, samples: int = 10,
          baseline_pairs: int = 100, compare_with: nn.Module | None = None,
          device: str | torch.device | None = None,
          progress: Callable[[str], None] | None = None,
          weights: str = "as given", executor: Executor | None = None) -> CheckReport:
    """Run the sanity checks on ``model`` for ``inputs`` (images in [0, 1], or whatever the
    model takes when ``preprocess`` is None and it has none) and return the report.

    ``compare_with``: a second model of the same architecture (say, trained on permuted
    labels) for the data randomization test. ``progress(step)`` is called after each
    randomization step of each seed. ``device``: where the model and inputs go (default:
    :func:`sanitylib.infra.device.default_device`). ``weights``: where the weights came from,
    for the report (a report on random weights says so at its top). ``executor``: where the
    seeds' units run (:func:`sanitylib.experiments.runner.randomization_run`).

    Refuses (ValueError) inputs or model outputs that are not finite, outputs that are not
    logits (see :func:`logits_model`), fewer than one input, step or sample.
    """
    validate(methods, order, init, metrics)
    for what, value in (("inputs", len(inputs)), ("ig_steps", ig_steps), ("samples", samples),
                        ("baseline_pairs", baseline_pairs)):
        if value < 1:
            raise ValueError(f"{what} must be at least 1, got {value}")
    finite_inputs(inputs)
    device = resolve_device(device)
    inputs = inputs.to(device)
    module = model.module if isinstance(model, ModelUnderTest) else model
    module.to(device)
    own = model.preprocess if isinstance(model, ModelUnderTest) else None
    logits_model(module, (preprocess or own or (lambda t: t))(inputs))
    subject = prepare_model(model, inputs[:1] if preprocess is None else preprocess(inputs[:1]),
                            blocks, gradcam_layer, preprocess)
    x = subject.preprocess(inputs) if subject.preprocess is not None else inputs
    options = options_for(methods, steps=ig_steps, samples=samples)
    runnable, refused = runnable_methods(subject, x, methods, options)
    if not runnable:
        raise ValueError("no method can be computed on this model: "
                         + "; ".join(f"{m}: {why}" for m, why in refused.items()))
    run = randomization_run(subject, x, runnable, order=order, init=init, seeds=seeds,
                            metrics=metrics, target=target, options=options, keep_maps=1,
                            labels={"model": subject.name, "test": f"parameters, {order}"},
                            verbose=False, progress=progress, executor=executor)
    baseline = baseline_table(metrics, tuple(x.shape[1:]), n=baseline_pairs)
    last = run.scores[run.scores.step == run.scores.step.max()]
    summary = summarize_scores(run.scores, ["test", "method", "metric", "block", "step"])
    finals = [summarize_scores(last, ["test", "method", "metric"])]
    scores = [run.scores]
    if compare_with is not None:
        other = compare_with.module if isinstance(compare_with, ModelUnderTest) else compare_with
        ours = explain_cached(subject, x, runnable, options=options)
        theirs = explain_cached(subject.with_module(other.to(device).eval()), x, runnable, options=options)
        pairs = pair_scores(ours, theirs, metrics,
                            labels={"model": subject.name, "test": "data randomization"})
        scores.append(pairs)
        finals.append(summarize_scores(pairs, ["test", "method", "metric"]))
    verdicts = read_verdicts(against_random(pd.concat(finals, ignore_index=True), baseline,
                                            PAPER_FINDINGS))
    settings = {"weights": weights, "order": order, "init": init, "seeds": list(seeds), "target": target,
                "ig_steps": ig_steps, "samples": samples, "inputs": list(inputs.shape),
                "device": str(device), "compare_with": compare_with is not None}
    return CheckReport(model=subject.name, settings=settings, blocks=list(subject.blocks),
                       steps=step_names(subject, order=order), methods=runnable,
                       scores=pd.concat(scores, ignore_index=True), baseline=baseline,
                       verdicts=verdicts, refused=refused, maps=run.maps[seeds[0]],
                       image=(subject.display(x[:1]) if subject.display is not None
                              else inputs[:1])[0].cpu(),
                       summary=summary)
