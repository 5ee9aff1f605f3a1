"""GLUE's binary SST-2 (Socher et al., 2013): the text data of Kokhlikyan et al. (2021), Section 3.

:func:`load_sst2` reads GLUE's SST-2 (``train.tsv`` and ``dev.tsv``, header ``sentence<TAB>label``,
1 = positive) from the first source that has it:

1. an explicit folder (``root=``), ``$SANITYLIB_SST2`` or ``$SANITYLIB_DATA``: the folder itself or
   its ``SST-2/`` or ``sst2/`` subfolder holding both files;
2. the Hugging Face hub's ``nyu-mll/glue`` ``sst2`` configuration, when online (skipped with
   ``SANITYLIB_OFFLINE=1``), through the ``datasets`` package, or through ``huggingface_hub`` and
   ``pyarrow``; without those packages the source is reported as skipped;
3. a ``shared/data/sst2/`` folder beside the repository (found by walking up from the working
   directory and from this package), the project's offline copy. Nothing requires it.

Without any source, :class:`sanitylib.data.sources.DataUnavailableError` names every source tried.
"""

from __future__ import annotations

import csv
import importlib.util
import os
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch

from sanitylib.data.sources import DataUnavailableError, offline

CLASSES = ("negative", "positive")
_SHARED_FOLDER = Path("shared") / "data" / "sst2"
_HUB_REPO = "nyu-mll/glue"



@dataclass(frozen=True)
class TextDataset:
    """SST-2 sentences and binary labels (0 negative, 1 positive) and where they came from."""

    train_sentences: list[str]
    train_labels: torch.Tensor
    dev_sentences: list[str]
    dev_labels: torch.Tensor
    source: str
    classes: tuple[str, ...] = CLASSES


def read_sst2_tsv(path: str | Path) -> tuple[list[str], torch.Tensor]:
    """Sentences and labels of one GLUE SST-2 file (tab-separated, header ``sentence label``).

    Quotes are ordinary characters in SST-2, so the file is read without CSV quoting.
    """
    table = pd.read_csv(path, sep="\t", quoting=csv.QUOTE_NONE, keep_default_na=False,
                        dtype={"sentence": str})
    missing = {"sentence", "label"} - set(table.columns)
    if missing:
        raise ValueError(f"{path} lacks the column(s) {sorted(missing)}; GLUE's SST-2 files have "
                         "the header 'sentence<TAB>label'")
    sentences = [s.strip() for s in table["sentence"]]
    return sentences, torch.tensor(table["label"].to_numpy(), dtype=torch.int64)


def _sst2_folder(folder: Path) -> Path | None:
    """The folder holding train.tsv and dev.tsv: ``folder`` itself, or its SST-2/ or sst2/."""
    for base in (folder, folder / "SST-2", folder / "sst2"):
        if (base / "train.tsv").is_file() and (base / "dev.tsv").is_file():
            return base
    return None


def _from_folder(folder: Path, source: str) -> TextDataset:
    train = read_sst2_tsv(folder / "train.tsv")
    dev = read_sst2_tsv(folder / "dev.tsv")
    return TextDataset(*train, *dev, f"{source} ({folder})")


def _shared_candidates(starts: Sequence[Path]) -> list[Path]:
    """``shared/data/sst2`` in every ancestor of the starting folders, nearest first."""
    seen: list[Path] = []
    for start in starts:
        for ancestor in (start.resolve(), *start.resolve().parents):
            candidate = ancestor / _SHARED_FOLDER
            if candidate not in seen:
                seen.append(candidate)
    return seen


def _from_hub(timeout: float) -> TextDataset:
    """GLUE SST-2 from the Hugging Face hub: ``datasets`` if installed, else the parquet files
    through ``huggingface_hub`` and ``pyarrow``. Raises ImportError when neither is usable."""
    # huggingface_hub retries an unreachable host for about 45 s; one probe fails fast instead.
    try:
        socket.create_connection(("huggingface.co", 443), timeout=timeout).close()
    except OSError as error:
        raise ConnectionError(f"huggingface.co is not reachable ({error})") from error
    if importlib.util.find_spec("datasets") is not None:
        import datasets

        splits = datasets.load_dataset(_HUB_REPO, "sst2")
        frames = {name: splits[name].to_pandas() for name in ("train", "validation")}
    elif importlib.util.find_spec("pyarrow") is not None:
        from huggingface_hub import hf_hub_download

        os.environ.setdefault("HF_HUB_DOWNLOAD_TIMEOUT", str(int(timeout)))
        frames = {name: pd.read_parquet(hf_hub_download(
            _HUB_REPO, f"sst2/{name}-00000-of-00001.parquet", repo_type="dataset"))
            for name in ("train", "validation")}
    else:
        raise ImportError("needs the `datasets` package, or `pyarrow` to read the hub's parquet "
                          "files; neither is installed")

    def split(frame: pd.DataFrame) -> tuple[list[str], torch.Tensor]:
        return ([s.strip() for s in frame["sentence"]],
                torch.tensor(frame["label"].to_numpy(), dtype=torch.int64))

    return TextDataset(*split(frames["train"]), *split(frames["validation"]),
                       f"Hugging Face hub {_HUB_REPO} sst2")


def load_sst2(root: str | Path | None = None, download: bool | None = None,
              search_from: Sequence[str | Path] | None = None, timeout: float = 10.0
              ) -> TextDataset:
    """GLUE's SST-2 (67,349 training and 872 dev sentences) from the first source that has it.

    Args:
        root: a folder with ``train.tsv`` and ``dev.tsv`` (or an ``SST-2/`` or ``sst2/``
            subfolder); else ``$SANITYLIB_SST2``, else ``$SANITYLIB_DATA``.
        download: try the Hugging Face hub; defaults to True unless ``SANITYLIB_OFFLINE=1``.
        search_from: where to start looking for ``shared/data/sst2`` upwards; defaults to the
            working directory and this package's folder.
        timeout: network timeout in seconds for the hub.

    Raises:
        DataUnavailableError: naming every source tried and how to provide the data.
    """
    tried: list[str] = []
    explicit = [(root, "root argument"), (os.environ.get("SANITYLIB_SST2"), "SANITYLIB_SST2"),
                (os.environ.get("SANITYLIB_DATA"), "SANITYLIB_DATA")]
    given = [(Path(folder), name) for folder, name in explicit if folder]
    for folder, name in given:
        found = _sst2_folder(folder)
        if found is not None:
            return _from_folder(found, f"local folder from {name}")
        tried.append(f"{folder} ({name}): no train.tsv and dev.tsv there or in SST-2/ or sst2/")
    if not given:
        tried.append("an explicit folder (root=, SANITYLIB_SST2 or SANITYLIB_DATA): not given")
    if download is None:
        download = not offline()
    if download:
        try:
            return _from_hub(timeout)
        except ImportError as error:
            tried.append(f"Hugging Face hub {_HUB_REPO} sst2: skipped ({error})")
        except Exception as error:  # noqa: BLE001 - any network failure means: try offline
            tried.append(f"Hugging Face hub {_HUB_REPO} sst2: failed "
                         f"({type(error).__name__}: {error})"[:300])
    else:
        tried.append(f"Hugging Face hub {_HUB_REPO} sst2: skipped (offline)")
    starts = [Path(p) for p in search_from] if search_from is not None else \
        [Path.cwd(), Path(__file__).resolve().parent]
    for candidate in _shared_candidates(starts):
        if _sst2_folder(candidate) == candidate:
            return _from_folder(candidate, "the project's shared copy")
    tried.append(f"{_SHARED_FOLDER}/ in a folder above {', '.join(str(s) for s in starts)}: "
                 "not found")
    raise DataUnavailableError(
        "no source has SST-2. Tried:\n  - " + "\n  - ".join(tried) + "\nPut GLUE's SST-2 files "
        "(train.tsv and dev.tsv, from https://gluebenchmark.com/tasks) in a folder and pass it as "
        "root= or set SANITYLIB_SST2, or connect to the network so that "
        "the Hugging Face hub's glue/sst2 can be read.")


def sample(sentences: Sequence[str], labels: torch.Tensor, size: int | None, seed: int
           ) -> tuple[list[str], torch.Tensor]:
    """A seeded random subset of ``size`` sentences (all of them, in order, for None)."""
    if size is None or size >= len(sentences):
        return list(sentences), labels
    index = torch.randperm(len(sentences), generator=torch.Generator().manual_seed(seed))[:size]
    return [sentences[i] for i in index.tolist()], labels[index]


def short_sentences(sentences: Sequence[str], count: int, seed: int = 0, max_words: int = 12
                    ) -> list[str]:
    """``count`` sentences of at most ``max_words`` words, drawn with a seeded permutation: short
    sentences keep the highlighted figures legible and the attributions cheap."""
    order = torch.randperm(len(sentences), generator=torch.Generator().manual_seed(seed)).tolist()
    picked = [sentences[i] for i in order if len(sentences[i].split()) <= max_words]
    return picked[:count]
