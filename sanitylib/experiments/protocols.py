"""Why EfficientNet-Lite0 disagrees with the paper: the randomization protocol, one factor at a time.

Adebayo et al. (2018, Section 4) find Guided BackProp's maps on Inception v3 nearly unchanged
after cascading randomization. On EfficientNet-Lite0 they are not (chapter "Cascading
randomization"). Candidate explanations, each a :class:`Protocol` that changes one thing against
the paper's (``kept``):

- ``reestimated`` / ``reset``: what becomes of batch-norm running statistics under random weights
  (:data:`sanitylib.methods.randomization.BATCHNORM`: the paper keeps the trained ones, Quantus
  resets them, or they are re-estimated on other pictures);
- ``relu``: the guided rule of ReLU6 (nothing passes where an output sits at 6) against the same
  weights with ReLU;
- ``black_zero``: Gradient ⊙ Input and Integrated Gradients measured from black instead of from
  the network's zero input (mid-grey, since the input is (255 x - 127) / 128).

:func:`protocol_runs` runs each protocol's randomization test and census
(:func:`sanitylib.experiments.census.census_run`); :func:`explanations` reads from the claims
which explanation changes which verdict.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pandas as pd
import torch
from torch import nn

from sanitylib.experiments.census import census_run
from sanitylib.experiments.claims import setting, threshold_claims
from sanitylib.experiments.intervals import interval_summary
from sanitylib.experiments.parameter_randomization import (
    cascading_claims,
    methods_for,
    model_ceilings,
)
from sanitylib.experiments.runner import randomization_run
from sanitylib.methods.randomization import batchnorm_layers
from sanitylib.methods.saliency import predicted_class
from sanitylib.models.under_test import ModelUnderTest

__all__ = ["PROTOCOLS", "SATURATION", "SCORE_COLUMNS", "Protocol", "census_summary",
           "explanation_summary", "explanations", "has_batchnorm", "protocol_ceilings", "protocol_claims",
           "protocol_runs", "same_top_class", "saturation_claims", "with_relu"]


@dataclass(frozen=True)
class Protocol:
    """One way of running the randomization test, differing from the paper's in one factor."""

    name: str
    label: str
    #: What the protocol tests, in a few words (the explanation it stands for).
    explanation: str
    batchnorm: str = "kept"
    #: ``"relu6"``: the network as trained; ``"relu"``: every ReLU6 replaced by ReLU.
    activation: str = "relu6"
    #: The zero of Gradient ⊙ Input and IG: ``"model"`` (the network's zero input) or ``"black"``.
    zero: str = "model"
    #: Methods the protocol concerns (None: every method of the run).
    methods: tuple[str, ...] | None = None

    def setting(self, target: str) -> str:
        """The claim setting of this protocol (:func:`sanitylib.experiments.claims.setting`)."""
        more = {"batch norm": self.batchnorm}
        if self.activation != "relu6":
            more["activation"] = self.activation
        if self.zero != "model":
            more["zero"] = self.zero
        return setting(target, **more)


PROTOCOLS: dict[str, Protocol] = {p.name: p for p in (
    Protocol("kept", "statistics kept (the paper's)", "none: the paper's protocol"),
    Protocol("reestimated", "statistics re-estimated", "batch-norm statistics",
             batchnorm="reestimated"),
    Protocol("reset", "statistics reset (Quantus)", "batch-norm statistics", batchnorm="reset"),
    Protocol("relu", "ReLU for ReLU6", "ReLU6's clamp at 6", activation="relu"),
    Protocol("black_zero", "inputs from black", "the input's zero", zero="black",
             methods=("gradient_x_input", "integrated_gradients")),
)}

#: Columns of the chapter's tidy scores (``results/architectures/scores.csv``).
SCORE_COLUMNS = ["architecture", "dataset", "protocol", "method", "order", "block", "step", "seed",
                 "image", "metric", "value"]


def with_relu(module: nn.Module) -> nn.Module:
    """A copy of ``module`` with every ``nn.ReLU6`` submodule replaced by ``nn.ReLU`` (the same
    weights; the function changes wherever an activation exceeded 6)."""
    changed = copy.deepcopy(module)
    replaced = 0
    for parent in changed.modules():
        for name, child in list(parent.named_children()):
            if isinstance(child, nn.ReLU6):
                setattr(parent, name, nn.ReLU())
                replaced += 1
    if not replaced:
        raise ValueError(f"{type(module).__name__} has no nn.ReLU6 module to replace")
    return changed


def same_top_class(model: ModelUnderTest, inputs: torch.Tensor) -> int:
    """How many ``inputs`` keep their top class when every ReLU6 of the trained network becomes
    a ReLU (:func:`with_relu`): how much the ``relu`` protocol changes the network itself."""
    relu = _subject(model, PROTOCOLS["relu"])
    return int((predicted_class(model, inputs) == predicted_class(relu, inputs)).sum())


def _subject(model: ModelUnderTest, protocol: Protocol) -> ModelUnderTest:
    if protocol.activation == "relu":
        return model.with_module(with_relu(model.module))
    return model


def _options(model: ModelUnderTest, inputs: torch.Tensor, protocol: Protocol,
             options: Mapping[str, Mapping[str, object]]) -> dict[str, dict[str, object]]:
    chosen = {m: dict(o) for m, o in options.items()}
    if protocol.zero == "black":
        black = torch.zeros(1, *inputs.shape[1:])
        black = model.preprocess(black)[0] if model.preprocess is not None else black[0]
        for method in protocol.methods or ():
            chosen.setdefault(method, {})["baseline"] = black
    return chosen


def has_batchnorm(model: ModelUnderTest | nn.Module) -> bool:
    """Whether the network has a batch norm with running statistics (where the batch-norm
    protocols differ from the paper's)."""
    return bool(batchnorm_layers(model.module if isinstance(model, ModelUnderTest) else model))


def protocol_runs(model: ModelUnderTest, inputs: torch.Tensor, dataset: str,
                  protocols: Sequence[str], *, orders: Sequence[str], seeds: Sequence[int],
                  methods: Sequence[str], metrics: Sequence[str],
                  options: Mapping[str, Mapping[str, object]],
                  calibration: torch.Tensor | None, target: str = "recompute"
                  ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every protocol's randomization test (each order and seed; a protocol's own ``methods``
    among ``methods``, those the model can run) and census on ``model``: the tidy scores
    (:data:`SCORE_COLUMNS`, the model's name as ``architecture``) and the census (architecture,
    dataset, protocol, then :data:`sanitylib.experiments.census.CENSUS_COLUMNS`).
    ``calibration``: model inputs other than ``inputs``, for re-estimated statistics."""
    unknown = [p for p in protocols if p not in PROTOCOLS]
    if unknown:
        raise ValueError(f"unknown protocol(s) {unknown}; valid choices: {', '.join(PROTOCOLS)}")
    scores, census = [], []
    for name in protocols:
        protocol = PROTOCOLS[name]
        subject = _subject(model, protocol)
        chosen = [m for m in methods_for(subject, methods)
                  if protocol.methods is None or m in protocol.methods]
        reestimate = calibration if protocol.batchnorm == "reestimated" else None
        labels = {"architecture": model.name, "dataset": dataset, "protocol": name}
        for order in orders:
            run = randomization_run(
                subject, inputs, chosen, order=order, seeds=seeds, metrics=metrics,
                target=target, options=_options(model, inputs, protocol, options),
                batchnorm=protocol.batchnorm, calibration=reestimate, labels=labels,
                verbose=False)
            scores.append(run.scores[SCORE_COLUMNS])
            if protocol.zero == "model":  # the census does not depend on the input's zero
                census.append(census_run(subject, inputs, order=order, seeds=seeds,
                                         batchnorm=protocol.batchnorm, calibration=reestimate,
                                         labels=labels))
    return pd.concat(scores, ignore_index=True), pd.concat(census, ignore_index=True)


def protocol_ceilings(model: ModelUnderTest, inputs: torch.Tensor, dataset: str,
                      protocols: Sequence[str], *, methods: Sequence[str],
                      metrics: Sequence[str], options: Mapping[str, Mapping[str, object]]
                      ) -> pd.DataFrame:
    """The perturbation ceiling of each protocol's network and maps (its activation and input
    zero; batch-norm statistics do not change the trained network), with a ``protocol`` column
    (:func:`sanitylib.experiments.parameter_randomization.model_ceilings`)."""
    tables = []
    for name in protocols:
        protocol = PROTOCOLS[name]
        chosen = [m for m in methods if protocol.methods is None or m in protocol.methods]
        tables.append(model_ceilings(
            {(model.name, dataset): (_subject(model, protocol), inputs)}, chosen,
            _options(model, inputs, protocol, options), metrics).assign(protocol=name))
    return pd.concat(tables, ignore_index=True)


def protocol_claims(scores: pd.DataFrame, floor: pd.DataFrame, ceilings: pd.DataFrame, *,
                    chapter: str, options: Mapping[str, Mapping[str, object]],
                    target: str = "recompute") -> pd.DataFrame:
    """The paper's cascading claims (every block re-initialized) under every protocol of
    ``scores``, each judged against its own protocol's ceiling (:func:`protocol_ceilings`),
    with the protocol in its setting and a ``protocol`` column."""
    cascading = scores[scores.order == "cascading"].rename(columns={"architecture": "model"})
    claims = []
    for name, part in cascading.groupby("protocol", sort=False):
        ceiling = ceilings[ceilings.protocol == name]
        made = cascading_claims(part, floor, ceiling, chapter=chapter,
                                setting=PROTOCOLS[name].setting(target), options=options)
        claims.append(made.assign(protocol=name))
    return pd.concat(claims, ignore_index=True)


#: The share of ReLU6 outputs at 6 below which saturation cannot block much of the gradient.
SATURATION = 0.05


def census_summary(census: pd.DataFrame) -> pd.DataFrame:
    """Per protocol, order and step: the mean shares at zero and at the upper clamp (over the
    inputs and seeds) and the mean relative spread of the logits (over the seeds)."""
    keys = ["protocol", "order", "step", "block"]
    return (census.groupby(keys, sort=False)
            .agg(share_zero=("share_zero", "mean"), share_upper=("share_upper", "mean"),
                 logit_std_relative=("logit_std_relative", "mean")).reset_index())


def saturation_claims(census: pd.DataFrame, *, chapter: str, target: str = "recompute"
                      ) -> pd.DataFrame:
    """Per protocol with the trained activations: the largest share of ReLU6 outputs at 6 over
    the cascade's steps, per photograph (averaged over seeds), claimed below
    :data:`SATURATION`; a t interval over the photographs."""
    rows = census[(census.order == "cascading") & census.share_upper.notna()]
    worst = (rows.groupby(["protocol", "architecture", "dataset", "seed", "image"], sort=False)
             ["share_upper"].max().reset_index()
             .rename(columns={"share_upper": "value", "architecture": "model"})
             .assign(metric="share"))
    summary = interval_summary(worst, ["protocol", "model", "dataset", "metric"])
    summary["low"] = summary["low"].clip(lower=0.0)  # a share is never negative
    claims = []
    for name, part in summary.groupby("protocol", sort=False):
        claims.append(threshold_claims(
            part, threshold=SATURATION, expected="below", chapter=chapter,
            test="ReLU6 saturation", source="an earlier version of this book's chapter 02",
            statement="{model}: at most {threshold} of ReLU6 outputs sit at 6 at any step of "
                      "the cascade",
            statistic="largest share of ReLU6 outputs at 6 over the steps",
            setting=PROTOCOLS[name].setting(target),
            expectation=f"below {SATURATION:g}").assign(protocol=name))
    return pd.concat(claims, ignore_index=True)


def explanations(claims: pd.DataFrame) -> pd.DataFrame:
    """For every protocol but the paper's, the methods whose cascading verdict it changes from
    the paper's protocol (``kept``): columns model, protocol, explanation, method, kept, verdict
    (under the protocol), changed (True when the two verdicts differ)."""
    keys = ["model", "dataset", "method", "metric"]
    kept = claims[claims.protocol == "kept"][[*keys, "verdict"]]
    rows = claims[claims.protocol != "kept"].merge(kept, on=keys, suffixes=("", "_kept"))
    return pd.DataFrame({
        "model": rows["model"], "protocol": rows["protocol"],
        "explanation": rows["protocol"].map(lambda p: PROTOCOLS[p].explanation),
        "method": rows["method"], "kept": rows["verdict_kept"], "verdict": rows["verdict"],
        "changed": rows["verdict"] != rows["verdict_kept"]})


def explanation_summary(claims: pd.DataFrame, method_labels: Mapping[str, str]) -> str:
    """"Which explanation survives", in words from :func:`explanations`: per factor, the methods
    whose verdict it changes (or how many it changes none of), then the methods whose claim
    differs from the paper under its protocol that no factor changes ("not explained")."""
    changes = explanations(claims)
    lines = []
    for explanation, group in changes.groupby("explanation", sort=False):
        moved = group[group.changed]
        tested = group.method.nunique()
        names = ", ".join(f"{method_labels.get(r.method, r.method)} ({r.kept} → {r.verdict} "
                          f"under {PROTOCOLS[r.protocol].label})" for r in moved.itertuples())
        lines.append(f"* **{explanation}**: " + (
            f"changes {names}." if len(moved) else
            f"changes no verdict of the {tested} method{'s' * (tested != 1)} tested."))
    kept = claims[claims.protocol == "kept"]
    unexplained = kept[(kept.verdict == "differs")
                       & ~kept.method.isin(changes[changes.changed].method)]
    lines.append("* **Not explained** by any factor tested here: " + (", ".join(
        method_labels.get(m, m) for m in unexplained.method) if len(unexplained) else "none") + ".")
    return "\n".join(lines)
