"""A seeded, cached trainer for the paper's MNIST / Fashion-MNIST models.

Adebayo et al. (2018), Appendix: Adam, learning rate 1e-4, batch 50; the data randomization test
trains the same architecture on permuted training labels until it memorises them (> 95 % training
accuracy, 100 epochs in the original). Checkpoints are cached keyed by the full configuration and
the data source, so a second run loads instead of training.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import ClassVar

import pandas as pd
import torch
from torch import nn

from sanitylib.data.images import ImageDataset, load_dataset, subset
from sanitylib.infra.cache import cached
from sanitylib.infra.device import resolve_device
from sanitylib.methods.frozen import predicted_class
from sanitylib.models.zoo import build

LABEL_KINDS = ("true", "permuted")


@dataclass(frozen=True)
class TrainConfig:
    """Everything that determines a trained model (the cache key)."""

    architecture: str = "cnn"
    dataset: str = "mnist"
    labels: str = "true"
    #: Fraction of training labels permuted when ``labels="permuted"`` (1.0: all of them).
    label_noise: float = 1.0
    train_size: int | None = None
    epochs: int = 10
    batch_size: int = 50
    lr: float = 1e-4
    seed: int = 0
    #: Stop once the running training accuracy of an epoch reaches this (None: all epochs).
    stop_at_train_accuracy: float | None = None

    def __post_init__(self) -> None:
        if self.labels not in LABEL_KINDS:
            raise ValueError(f"unknown labels {self.labels!r}; valid choices: {', '.join(LABEL_KINDS)}")
        if not 0.0 <= self.label_noise <= 1.0:
            raise ValueError(f"label_noise must lie in [0, 1], got {self.label_noise}")


@dataclass
class TrainedModel:
    """A trained model with its configuration, data source and accuracy record.

    ``eval_accuracy`` is measured on the held-out split named by ``eval_split`` ("test" for the
    image datasets, "dev" for SST-2), always with the true labels.
    """

    model: nn.Module
    config: object
    source: str
    train_accuracy: float
    eval_accuracy: float
    epochs_run: int
    history: list[dict[str, float]] = field(default_factory=list)
    seconds: float = 0.0
    eval_split: ClassVar[str] = "test"

    @property
    def test_accuracy(self) -> float:
        return self.eval_accuracy

    def _columns(self) -> dict[str, object]:
        """Columns of :meth:`summary` between the configuration and the source."""
        return {}

    def summary(self) -> dict[str, object]:
        """One flat row for an accuracy table."""
        return {**asdict(self.config), **self._columns(), "source": self.source,
                "train_accuracy": self.train_accuracy,
                f"{self.eval_split}_accuracy": self.eval_accuracy,
                "epochs_run": self.epochs_run, "train_seconds": round(self.seconds, 1)}


def permute_labels(labels: torch.Tensor, fraction: float, seed: int) -> torch.Tensor:
    """Shuffle the labels of a seeded random ``fraction`` of the examples among themselves."""
    generator = torch.Generator().manual_seed(seed + 7919)
    chosen = torch.randperm(len(labels), generator=generator)[: round(fraction * len(labels))]
    shuffled = labels.clone()
    shuffled[chosen] = labels[chosen[torch.randperm(len(chosen), generator=generator)]]
    return shuffled


def accuracy(predicted: torch.Tensor, labels: torch.Tensor) -> float:
    """Share of ``predicted`` classes equal to ``labels`` (exact, not a float32 mean)."""
    return int((predicted.cpu() == labels.cpu()).sum()) / max(len(labels), 1)


Batches = Callable[[torch.Generator], Iterable[tuple[tuple[torch.Tensor, ...], torch.Tensor]]]


def training_loop(model: nn.Module, batches: Batches, n_examples: int,
                  optimizer: torch.optim.Optimizer, *, epochs: int, seed: int,
                  scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
                  stop_at_train_accuracy: float | None = None, verbose: bool = False
                  ) -> list[dict[str, float]]:
    """The one training loop of the book (images and text): cross-entropy, one optimizer step
    per batch, the per-epoch history of loss and running training accuracy.

    ``batches(generator)`` yields ``(model inputs, labels)`` for one epoch, shuffled with the
    seeded ``generator``. Stops early once an epoch's running training accuracy reaches
    ``stop_at_train_accuracy`` (the paper trained on permuted labels until > 95 % were fitted).
    ``model`` is trained in place and left in eval mode.
    """
    generator = torch.Generator().manual_seed(seed)
    history: list[dict[str, float]] = []
    for epoch in range(1, epochs + 1):
        model.train()
        loss_sum, correct = 0.0, 0
        for inputs, labels in batches(generator):
            logits = model(*inputs)
            loss = nn.functional.cross_entropy(logits, labels)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if scheduler is not None:
                scheduler.step()
            loss_sum += float(loss.detach()) * len(labels)
            correct += int((logits.argmax(1) == labels).sum())
        history.append({"epoch": epoch, "loss": loss_sum / n_examples,
                        "train_accuracy": correct / n_examples})
        if verbose:
            print(f"  epoch {epoch:3d}/{epochs}: loss {loss_sum / n_examples:.4f}, "
                  f"running train accuracy {correct / n_examples:.3f}", flush=True)
        if stop_at_train_accuracy is not None and correct / n_examples >= stop_at_train_accuracy:
            break
    model.eval()
    return history


def fit(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, lr: float, epochs: int,
        batch_size: int, seed: int, stop_at_train_accuracy: float | None = None,
        verbose: bool = False) -> list[dict[str, float]]:
    """Adam on ``(x, y)`` in seeded, shuffled mini-batches (:func:`training_loop`)."""
    def batches(generator: torch.Generator):
        order = torch.randperm(len(y), generator=generator)
        for i in range(0, len(y), batch_size):
            index = order[i:i + batch_size].to(x.device)
            yield (x[index],), y[index]

    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    return training_loop(model, batches, len(y), optimizer, epochs=epochs, seed=seed,
                         stop_at_train_accuracy=stop_at_train_accuracy, verbose=verbose)


def _fit(config: TrainConfig, data: ImageDataset, device: torch.device,
         verbose: bool) -> dict[str, object]:
    torch.manual_seed(config.seed)
    x, y = subset(data.x_train, data.y_train, config.train_size, config.seed)
    if config.labels == "permuted":
        y = permute_labels(y, config.label_noise, config.seed)
    x, y = x.to(device), y.to(device)
    model = build(config.architecture, in_channels=x.shape[1]).to(device)  # drawn on the CPU
    start = time.perf_counter()
    history = fit(model, x, y, lr=config.lr, epochs=config.epochs, batch_size=config.batch_size,
                  seed=config.seed, stop_at_train_accuracy=config.stop_at_train_accuracy,
                  verbose=verbose)
    return {"history": history,
            "train_accuracy": accuracy(predicted_class(model, x, max_rows=1000), y),
            "test_accuracy": accuracy(predicted_class(model, data.x_test, max_rows=1000),
                                      data.y_test),
            "state_dict": {k: v.cpu() for k, v in model.state_dict().items()},
            "seconds": time.perf_counter() - start}


def train(config: TrainConfig, data: ImageDataset | None = None,
          verbose: bool = True, device: str | torch.device | None = None) -> TrainedModel:
    """Train (or load from the cache) the model ``config`` describes, on ``device`` (default:
    :func:`sanitylib.infra.device.default_device`), and return it there.

    Training accuracy is measured on the labels the model was trained on (permuted ones for the
    data randomization test); test accuracy always on the true test labels. The initial weights
    and the batch order are drawn on the CPU; a GPU still trains to other weights (its dropout
    generator and summation order differ), so the device kind is part of the checkpoint's key.
    """
    device = resolve_device(device)
    data = data if data is not None else load_dataset(config.dataset)
    if data.name != config.dataset:
        raise ValueError(f"config asks for {config.dataset!r} but data is {data.name!r}")
    key = {**asdict(config), "source": data.source, "device": device.type}
    if verbose:
        print(f"model {config.architecture} / {config.dataset} / {config.labels} labels "
              f"({data.source_label})", flush=True)
    result = cached("models", key, lambda: _fit(config, data, device, verbose))
    model = build(config.architecture, in_channels=data.x_train.shape[1])
    model.load_state_dict(result["state_dict"])
    model.to(device).eval()
    trained = TrainedModel(model, config, data.source, result["train_accuracy"],
                           result["test_accuracy"], len(result["history"]), result["history"],
                           result["seconds"])
    if verbose:
        print(f"  train accuracy {trained.train_accuracy:.3f}, test accuracy "
              f"{trained.test_accuracy:.3f}, {trained.epochs_run} epochs", flush=True)
    return trained


#: Test accuracy the paper reports for its models trained on true labels (Appendix).
PAPER_TEST_ACCURACY = {("cnn", "mnist"): 0.992, ("mlp", "mnist"): 0.987}
#: The paper's target for permuted labels: > 95 % training accuracy, test accuracy at chance.
PAPER_PERMUTED = {"train_accuracy": "> 0.95", "test_accuracy": "≈ 0.10 (chance)"}


def train_models(architectures: Sequence[str], datasets: Sequence[str] | dict[str, ImageDataset],
                 training: dict[str, dict], labels: Sequence[str] = LABEL_KINDS, seed: int = 0,
                 verbose: bool = True) -> dict[tuple[str, str, str], TrainedModel]:
    """Train (or load) every (architecture, dataset, labels) model.

    ``training`` maps each label kind ("true", "permuted") to TrainConfig keyword arguments, the
    form the notebooks' ``training`` parameter takes; ``datasets`` are names or loaded data.
    """
    loaded = datasets if isinstance(datasets, dict) else {n: load_dataset(n) for n in datasets}
    missing = [kind for kind in labels if kind not in training]
    if missing:
        raise ValueError(f"training has no settings for {missing}; give keys among {LABEL_KINDS}")
    return {(arch, name, kind): train(TrainConfig(arch, name, kind, seed=seed, **training[kind]),
                                      data, verbose)
            for name, data in loaded.items() for arch in architectures for kind in labels}


def accuracy_table(models: dict[tuple[str, str, str], TrainedModel]) -> pd.DataFrame:
    """One tidy row per model: configuration, accuracies and the paper's numbers."""
    rows = []
    for (arch, name, kind), trained in models.items():
        paper_test = PAPER_TEST_ACCURACY.get((arch, name)) if kind == "true" else \
            PAPER_PERMUTED["test_accuracy"]
        paper_train = PAPER_PERMUTED["train_accuracy"] if kind == "permuted" else None
        rows.append({**trained.summary(), "paper_train_accuracy": paper_train,
                     "paper_test_accuracy": paper_test})
    return pd.DataFrame(rows)
