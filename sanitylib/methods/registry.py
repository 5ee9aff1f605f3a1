"""One spec per saliency method: what it is called, how it is computed, what it needs.

Everything the library knows about a method lives in its :class:`MethodSpec`: the function
``function(model, inputs, targets, *, max_rows, **settings) -> maps`` (maps shaped like
``inputs``), its settings with their defaults and limits, what it needs from the model (a conv
layer, module hooks), whether it draws random numbers, whether it can be stacked over many
models at once (:mod:`sanitylib.methods.stacked`), the computations it shares with other
methods, and what Adebayo et al. (2018, https://arxiv.org/abs/1810.03292, Section 4) found for it
under cascading randomization. :data:`METHODS`, :data:`LABELS`, each spec's ``defaults``, the dispatch
of :func:`sanitylib.methods.saliency.explain`, its validation and the options of
:func:`sanitylib.check` are read from here.

A user's own method joins with :func:`register_method` and then runs everywhere a built-in does:
``explain``, the randomization runner, ``check`` and ``sanitylib check --methods`` (with
``--import`` naming the module that registers it)::

    def occlusion(model, inputs, targets, *, patch=4):
        ...
    register_method("occlusion", occlusion, label="Occlusion", settings={"patch": 4})
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from sanitylib.methods import attribution, gradients
from sanitylib.methods.guided import guided_backprop

__all__ = ["ALL_METHODS", "EXECUTION", "LABELS", "METHODS", "MethodSpec", "Setting",
           "install_method", "method_names", "method_spec", "options_for", "register_method",
           "unregister_method"]


@dataclass(frozen=True)
class Setting:
    """One keyword setting of a method: its default, what it means, its least valid value and
    the type a given value is converted to (``int`` for a count: 5.0 steps are 5 steps)."""

    name: str
    default: object
    doc: str = ""
    minimum: float | None = None
    convert: Callable[[object], object] | None = None

    def validate(self, method: str, value: object) -> object:
        """``value`` converted; ValueError when it cannot be, or lies below :attr:`minimum`."""
        if value is None:
            return value
        if self.convert is not None:
            kind = {int: "whole number", float: "number"}.get(self.convert,  # type: ignore[call-overload]
                                                               self.convert.__name__)
            try:
                converted = self.convert(value)
            except (TypeError, ValueError):
                raise ValueError(f"{self.name} must be a {kind} for {method}, got {value!r}") \
                    from None
            if converted != value:
                raise ValueError(f"{self.name} must be a {kind} for {method}, got {value!r}")
            value = converted
        if self.minimum is not None and value < self.minimum:  # type: ignore[operator]
            raise ValueError(f"{self.name} must be at least {self.minimum:g} for {method}, "
                             f"got {value}")
        return value


STEPS = Setting("steps", 50, "interpolation steps from the baseline to the input, both ends", 1,
                int)
BASELINE = Setting("baseline", 0.0, "the reference input: a number, one input, or one per input")
MULTIPLY = Setting("multiply_by_inputs", True,
                   "times (x - baseline) (global) or not (local; Kokhlikyan et al. 2021)")
SAMPLES = Setting("samples", 50, "noisy copies (or Gradient SHAP draws) per input", 1, int)
NOISE = Setting("noise_level", 0.15, "noise sigma as a fraction of each input's max - min", 0,
                float)
SEED = Setting("seed", 0, "input i draws its noise from seed + i", None, int)
LAYER = Setting("layer", None, "the conv layer (module or submodule path); default: the model's")
RELU = Setting("relu_attributions", True, "GradCAM's ReLU on the map")
EPSILON = Setting("epsilon", 0.25, "LRP's stabilizer (Montavon et al. 2019)", 0, float)
STDEV = Setting("stdev", 0.0, "Gradient SHAP's input noise", 0, float)
#: How the passes are cut, for every method; they never change the maps.
EXECUTION = (Setting("max_rows", None, "model inputs per pass; default from memory_mb", 1, int),
             Setting("memory_mb", 2048.0, "memory one pass may take", 1, float))


@dataclass(frozen=True)
class MethodSpec:
    """Everything the library knows about one method (see the module's docstring)."""

    name: str
    label: str
    function: Callable[..., object]
    settings: tuple[Setting, ...] = ()
    reference: str = ""
    #: ``"paper"`` (Adebayo et al.), ``"follow-up"`` (the follow-up literature) or
    #: ``"registered"`` (a user's, :func:`register_method`).
    source: str = "registered"
    needs_conv_layer: bool = False
    #: Runs through module hooks or Python-level calls inside the model: not on TorchScript.
    needs_hooks: bool = False
    stackable: bool = False
    #: Computations made once for all methods that name them in one call: "gradient",
    #: "noisy gradients", "guided backprop", "gradcam".
    shares: tuple[str, ...] = ()
    #: Adebayo et al.'s finding under cascading randomization ("changes", "barely changes",
    #: "keeps the input's structure"), for the paper's methods.
    paper_finding: str | None = None
    _takes_max_rows: bool = field(default=True, repr=False)

    @property
    def seeded(self) -> bool:
        """Whether the maps depend on a random draw (a ``seed`` setting)."""
        return any(s.name == "seed" for s in self.settings)

    @property
    def defaults(self) -> dict[str, object]:
        """Every setting with its default, the execution settings included."""
        return {s.name: s.default for s in (*self.settings, *EXECUTION)}

    def resolve(self, given: Mapping[str, object] | None = None) -> dict[str, object]:
        """``given`` checked (names and limits) and completed with the defaults."""
        given = dict(given or {})
        known = {s.name: s for s in (*self.settings, *EXECUTION)}
        unknown = sorted(set(given) - set(known))
        if unknown:
            raise ValueError(f"{self.name} takes no setting(s) {unknown}; its settings: "
                             f"{', '.join(known)}")
        checked = {name: known[name].validate(self.name, value) for name, value in given.items()}
        return {**self.defaults, **checked}

    def call(self, model: object, x: object, targets: object, settings: Mapping[str, object],
             max_rows: int) -> object:
        """``function(model, x, targets, **settings)`` with ``max_rows`` where it takes it."""
        own = {s.name: settings[s.name] for s in self.settings}
        if self._takes_max_rows:
            own["max_rows"] = max_rows
        return self.function(model, x, targets, **own)


def _takes_max_rows(function: Callable[..., object]) -> bool:
    parameters = inspect.signature(function).parameters.values()
    return any(p.name == "max_rows" or p.kind is p.VAR_KEYWORD for p in parameters)


_PAPER = "Adebayo et al. 2018, https://arxiv.org/abs/1810.03292"
_BUILT_IN = (
    MethodSpec("gradient", "Gradient", gradients.gradient, (), "Simonyan et al. 2014", "paper",
               stackable=True, shares=("gradient",), paper_finding="changes"),
    MethodSpec("gradient_x_input", "Gradient ⊙ Input", gradients.gradient_x_input, (BASELINE,),
               "Shrikumar et al. 2016", "paper", stackable=True, shares=("gradient",),
               paper_finding="keeps the input's structure"),
    MethodSpec("integrated_gradients", "Integrated Gradients", gradients.integrated_gradients,
               (STEPS, BASELINE, MULTIPLY), "Sundararajan et al. 2017", "paper", stackable=True,
               paper_finding="keeps the input's structure"),
    MethodSpec("smoothgrad", "SmoothGrad", gradients.smoothgrad, (SAMPLES, NOISE, SEED),
               "Smilkov et al. 2017", "paper", shares=("noisy gradients",),
               paper_finding="changes"),
    MethodSpec("ig_smoothgrad", "IG-SmoothGrad", gradients.ig_smoothgrad,
               (STEPS, BASELINE, MULTIPLY, SAMPLES, NOISE, SEED), _PAPER, "paper",
               paper_finding="keeps the input's structure"),
    MethodSpec("vargrad", "VarGrad", gradients.vargrad, (SAMPLES, NOISE, SEED), _PAPER, "paper",
               shares=("noisy gradients",), paper_finding="changes"),
    MethodSpec("guided_backprop", "Guided BackProp", guided_backprop, (),
               "Springenberg et al. 2015", "paper", needs_hooks=True,
               shares=("guided backprop",), paper_finding="barely changes"),
    MethodSpec("gradcam", "GradCAM", gradients.gradcam, (LAYER, RELU), "Selvaraju et al. 2017",
               "paper", needs_conv_layer=True, needs_hooks=True, shares=("gradcam",),
               paper_finding="changes"),
    MethodSpec("guided_gradcam", "Guided GradCAM", gradients.guided_gradcam, (LAYER, RELU),
               "Selvaraju et al. 2017", "paper", needs_conv_layer=True, needs_hooks=True,
               shares=("guided backprop", "gradcam"), paper_finding="barely changes"),
    MethodSpec("deeplift", "DeepLift", attribution.deeplift, (BASELINE,),
               "Shrikumar et al. 2017", "follow-up", needs_hooks=True),
    MethodSpec("gradient_shap", "Gradient SHAP", attribution.gradient_shap,
               (BASELINE, SAMPLES, STDEV, SEED), "Lundberg & Lee 2017", "follow-up"),
    MethodSpec("lrp", "LRP-ε", attribution.lrp, (EPSILON,), "Bach et al. 2015", "follow-up",
               needs_hooks=True),
)
_REGISTRY: dict[str, MethodSpec] = {spec.name: spec for spec in _BUILT_IN}

#: The paper's methods, in its order.
METHODS = tuple(s.name for s in _BUILT_IN if s.source == "paper")
#: The paper's methods and the follow-ups' (:mod:`sanitylib.methods.attribution`).
ALL_METHODS = tuple(s.name for s in _BUILT_IN)

class _Labels(Mapping[str, str]):
    """Method name -> label, for every method registered now (a live view)."""

    def __getitem__(self, name: str) -> str:
        return _REGISTRY[name].label

    def __iter__(self) -> Iterator[str]:
        return iter(_REGISTRY)

    def __len__(self) -> int:
        return len(_REGISTRY)


#: Method name -> its label, registered methods included.
LABELS: Mapping[str, str] = _Labels()


def method_names(source: str | None = None) -> tuple[str, ...]:
    """Every registered method's name (built-ins first), or those of one ``source``."""
    return tuple(n for n, s in _REGISTRY.items() if source is None or s.source == source)


def method_spec(name: str) -> MethodSpec:
    """The spec of ``name``; ValueError naming the valid choices."""
    if name not in _REGISTRY:
        raise ValueError(f"unknown method {name!r}; valid choices: {', '.join(_REGISTRY)}")
    return _REGISTRY[name]


def register_method(name: str, function: Callable[..., object], *, label: str | None = None,
                    settings: Mapping[str, object] | Sequence[Setting] = (),
                    needs_conv_layer: bool = False, needs_hooks: bool = False,
                    reference: str = "", replace: bool = False) -> MethodSpec:
    """Make ``function(model, inputs, targets, **settings) -> maps`` a method called ``name``.

    ``model`` is the network (``nn.Module``), ``inputs`` a batch on its device, ``targets`` the
    class per input (a long tensor), and the maps come back shaped like ``inputs``. A function
    with a ``max_rows`` parameter receives the rows one pass may hold. ``settings``: name ->
    default (or :class:`Setting`); a ``seed`` setting marks the method as seeded, and ``layer``
    with ``needs_conv_layer`` receives the model's GradCAM layer (a module) by default.
    ``replace`` re-registers a name of yours; a built-in's name is refused.
    """
    if not name.isidentifier():
        raise ValueError(f"method name {name!r} must be a Python identifier")
    if name in ALL_METHODS or (name in _REGISTRY and not replace):
        raise ValueError(f"a method {name!r} is registered already; choose another name"
                         + ("" if name in ALL_METHODS else " or pass replace=True"))
    specs = tuple(s if isinstance(s, Setting) else Setting(str(s), settings[s])  # type: ignore[index]
                  for s in settings)
    clash = [s.name for s in specs if s.name in {e.name for e in EXECUTION}]
    if clash:
        raise ValueError(f"settings {clash} are the library's (how passes are cut); rename them")
    spec = MethodSpec(name, label or name, function, specs, reference, "registered",
                      needs_conv_layer=needs_conv_layer, needs_hooks=needs_hooks,
                      _takes_max_rows=_takes_max_rows(function))
    _REGISTRY[name] = spec
    return spec


def install_method(spec: MethodSpec) -> None:
    """Put a registered method's spec, as it is, under its name (a worker process receiving the
    caller's registrations; an older one of the same name is replaced)."""
    if spec.source != "registered" or spec.name in ALL_METHODS:
        raise ValueError(f"only registered methods are installed; {spec.name!r} is built in")
    _REGISTRY[spec.name] = spec


def unregister_method(name: str) -> None:
    """Remove a method registered with :func:`register_method` (built-ins stay)."""
    if method_spec(name).source != "registered":
        raise ValueError(f"{name!r} is built in and cannot be unregistered")
    del _REGISTRY[name]


def options_for(methods: Sequence[str], **values: object) -> dict[str, dict[str, object]]:
    """Per-method options giving each method the ``values`` among its own settings, e.g.
    ``options_for(methods, steps=10, samples=10)`` sets IG's steps and SmoothGrad's samples."""
    return {m: {k: v for k, v in values.items() if k in {s.name for s in method_spec(m).settings}}
            for m in methods}
