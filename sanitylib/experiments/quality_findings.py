"""What the input-multiplier chapter's quality tables say, against Kokhlikyan et al. (2021).

Kokhlikyan et al., "Investigating sanity checks for saliency maps with image and text
classification" (arXiv 2106.07475), Table 1 and Figs. 2 and 6: infidelity and max-sensitivity of
local and global attributions under cascading randomization, and the effect of smoothing the
network (Softplus for ReLU, LogSumExp for max pooling). Each function turns the chapter's summary
tables into a Markdown paragraph whose every number is computed from them; the published numbers
quoted are theirs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd
import torch
from torch import nn

from sanitylib.experiments.input_multiplier import LABELS, PAIRS, VARIANTS
from sanitylib.infra.device import module_device

__all__ = ["mean_top_logit", "quality_reading", "smoothing_reading"]


def mean_top_logit(model: nn.Module, inputs: torch.Tensor) -> float:
    """The mean absolute value of the largest logit: the scale infidelity is measured in."""
    with torch.no_grad():
        return float(model(inputs.to(module_device(model))).max(1).values.abs().mean())


def _listing(values: Mapping[str, float], fmt: str) -> str:
    return ", ".join(f"{LABELS[v]} {x:{fmt}}" for v, x in values.items())


def quality_reading(quality_summary: pd.DataFrame, steps: Sequence[str], variants: Sequence[str],
                    ig_steps: int, logit_trained: float, logit_randomized: float) -> str:
    """How the infidelity and max-sensitivity tables read, and how they compare with the
    three findings of Kokhlikyan et al.'s Table 1 (``quality_summary``: rows of method, metric,
    block, mean; ``steps``: the cascade's step names, trained first)."""
    means = quality_summary.set_index(["method", "metric", "block"])["mean"]
    first, last = steps[0], steps[-1]
    local = [v for v in variants if not VARIANTS[v][1]]
    global_ = [v for v in variants if VARIANTS[v][1]]
    higher_global = [(lo, gl) for lo, gl in PAIRS
                     if means[gl, "infidelity", first] > means[lo, "infidelity", first]]
    rises = {v: means[v, "infidelity", last] / means[v, "infidelity", first] for v in variants}
    relative_rises = {v: means[v, "relative_infidelity", last]
                      / means[v, "relative_infidelity", first] for v in variants}
    sens = {v: means[v, "max_sensitivity", last] / means[v, "max_sensitivity", first]
            for v in variants}
    near_one = min(means[v, "relative_infidelity", first] for v in local) > 0.5
    local_reading = (
        "close to 1, so under a Gaussian change of every pixel the ReLU network crosses so many "
        "kinks that the local maps predict the change of the logit hardly better than a zero map "
        "would" if near_one else "the local maps predict a good part of the change of the logit "
        "under a Gaussian change of every pixel")
    rises_ig = rises["ig_local"]
    return f"""
**Reading the tables.** On the trained CNN the local maps' infidelity is
{_listing({v: means[v, 'infidelity', first] for v in local}, '.2g')} (squared logits), and their
relative infidelity is {_listing({v: means[v, 'relative_infidelity', first] for v in local}, '.2f')}:
{local_reading} (Section 3 shows what smoothing does to this). The global maps' completeness
errors are {_listing({v: means[v, 'infidelity', first] for v in global_}, '.2g')}: IG is complete
up to its Riemann sum ({ig_steps} steps here), Gradient ⊙ Input is not complete. Fully
randomized, infidelity changes by a factor of {_listing(rises, '.2g')}, relative infidelity by
{_listing(relative_rises, '.2g')}, and max-sensitivity by {_listing(sens, '.2g')}.

**Against the paper.** Kokhlikyan et al. (Table 1, Inception v3, IG) find three things.
(i) Global infidelity far above local (2.84 against 0.0001 on the trained network): here the
global variant has the higher infidelity in {len(higher_global)} of {len(PAIRS)} pairs
({'agrees' if len(higher_global) == len(PAIRS) else 'partly agrees'}).
(ii) Infidelity rising by orders of magnitude from the second or third randomized block on:
here it {'rises' if rises_ig > 1 else 'falls'} for local IG (factor {rises_ig:.2g}), which
{'agrees' if rises_ig > 1 else 'disagrees'}. Infidelity is in squared logits, and Xavier
re-initialization (biases set to zero) changes the size of this CNN's predicted logits from
{logit_trained:.2g} to {logit_randomized:.2g} (mean absolute value); relative infidelity, which
removes that scale, changes by {relative_rises['ig_local']:.2g} for local IG. Their Inception v3
has 17 blocks with batch normalization whose randomized function is far rougher than a
four-layer CNN's. One exact zero stands out: with its biases re-initialized to zero the fully
randomized ReLU CNN is positively homogeneous, `f(αx) = α f(x)` for α > 0, so by Euler's
theorem Gradient ⊙ Input sums exactly to `f(x) − f(0)` and its completeness error vanishes
({means['gradient_x_input', 'infidelity', last]:.1g} here).
(iii) Max-sensitivity "almost unchanged" (0.26–0.45 across all steps, at most 1.6 times its
value on the trained network): here it changes by a factor between {min(sens.values()):.2f} and
{max(sens.values()):.2f} from the trained to the fully randomized network,
{'a change of the same order' if max(sens.values()) < 2.5 else 'a larger change than theirs'}.
"""


def smoothing_reading(ratio: pd.DataFrame, kinks: pd.DataFrame, names: Sequence[str],
                      logit_sizes: Mapping[str, float], smooth_epochs: int) -> str:
    """How smoothing the CNN changed its slope and its explanations' quality, against the
    paper (``ratio``: rows of state, metric, method, "smoothed / original"; ``kinks``: rows of
    state, model, jump; ``names``: the original and the smoothed network's names)."""
    original, smoothed = names
    kink = kinks.set_index(["state", "model"]).jump
    trained = ratio[ratio.state == "trained"]
    infidelity = trained[trained.metric == "infidelity"]
    lower = infidelity[infidelity["smoothed / original"] < 1].method.map(LABELS).tolist()

    def median(metric: str) -> float:
        return float(trained[trained.metric == metric]["smoothed / original"].median())

    smaller = logit_sizes[smoothed] < 0.8 * logit_sizes[original]
    return f"""
**Against the paper.** Smoothing makes the slope continuous: its jumps shrink from
{kink['trained', original]:.2g} to {kink['trained', smoothed]:.2g} on the trained networks, as
in their Fig. 2. On the trained networks it lowers the infidelity of {len(lower)} of
{len(infidelity)} methods ({', '.join(lower) or 'none'}); the median ratio smoothed/original is
{median('infidelity'):.2g}, that of relative infidelity {median('relative_infidelity'):.2g} and
that of max-sensitivity {median('max_sensitivity'):.2g}. Kokhlikyan et al. report that
infidelity "drops significantly" with Softplus and LogSumExp on Inception v3; on the small MNIST
CNN {'the same holds for most methods' if len(lower) > len(infidelity) / 2 else 'the effect is weaker or reversed'}.
Infidelity is in squared logits; the smoothed network's predicted logits average
{logit_sizes[smoothed]:.2f} against {logit_sizes[original]:.2f} for the original,
{'so part of its lower infidelity is only a smaller scale' if smaller else 'so the drop is not a matter of scale'};
relative infidelity and max-sensitivity do not depend on that scale. The smoothed network was
fine-tuned for only {smooth_epochs} epoch(s), and its accuracy is in the table above: part of
any difference is a difference between two networks, not only between two activation functions.
"""
