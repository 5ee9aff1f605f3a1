"""sanitylib: sanity checks for saliency maps, replicated and reusable.

Adebayo, Gilmer, Muelly, Goodfellow, Hardt and Kim, "Sanity Checks for Saliency Maps", NeurIPS 2018
(arXiv 1810.03292), and the follow-up by Kokhlikyan et al. (arXiv 2106.07475).

The package is layered (see the README's "Where things are"):

- :mod:`sanitylib.methods`: explanations, randomization, similarity, quality metrics;
- :mod:`sanitylib.models`: the model under test, the paper's networks, training;
- :mod:`sanitylib.data`: datasets with offline sources;
- :mod:`sanitylib.experiments`: the shared runner and one module per chapter;
- :mod:`sanitylib.figures`: drawing only;
- :mod:`sanitylib.infra`: cache, results, recorded checks;
- :mod:`sanitylib.checker`: :func:`check` on a user's own model and its report (the
  ``sanitylib check`` command, :mod:`sanitylib.cli`).

The everyday API is re-exported here::

    from sanitylib import explain, randomize, compare, register_method
"""

from importlib.metadata import PackageNotFoundError, version

from sanitylib.methods.randomization import INITS, ORDERS, randomize
from sanitylib.methods.registry import (
    LABELS,
    METHODS,
    MethodSpec,
    Setting,
    method_names,
    method_spec,
    register_method,
    unregister_method,
)
from sanitylib.methods.saliency import explain, predicted_class
from sanitylib.methods.similarity import (
    METRICS,
    MetricSpec,
    compare,
    metric_names,
    metric_spec,
    register_metric,
    summarize,
    unregister_metric,
)
from sanitylib.models import ModelUnderTest, model_under_test

try:  # one version, pyproject.toml's
    __version__ = version("sanitylib")
except PackageNotFoundError:  # run from a source tree that was never installed
    __version__ = "0+unknown"


__all__ = ["INITS", "LABELS", "METHODS", "METRICS", "ORDERS", "CheckReport", "MethodSpec",
           "MetricSpec", "ModelUnderTest", "Setting", "check", "compare", "explain",
           "method_names", "method_spec", "metric_names", "metric_spec", "model_under_test",
           "predicted_class", "randomize", "register_method", "register_metric", "summarize",
           "unregister_method", "unregister_metric"]


def __getattr__(name: str) -> object:
    """``check`` and ``CheckReport`` load on first use: they bring pandas and the report code,
    which ``explain`` / ``randomize`` / ``compare`` do not need."""
    if name in ("check", "CheckReport"):
        from sanitylib import checker

        return getattr(checker, name)
    raise AttributeError(f"module 'sanitylib' has no attribute {name!r}")
