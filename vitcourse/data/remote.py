"""Data sets that need a download: CIFAR-10 (torchvision) and the Hugging Face Hub (``datasets``).

These serve the ``full`` profile (Colab). Offline, they must fail in seconds with one
clear line, never after minutes of retries, so every loader first asks:

1. is the data already on disk? Then no network is needed;
2. is offline mode on (``HF_HUB_OFFLINE=1``)? Then don't try the network at all;
3. does a TCP connection to the server open within a short timeout (DNS included)?

and raises :class:`DataUnavailableError` as soon as one answer rules the download out.
"""

from __future__ import annotations

import concurrent.futures
import os
import socket
from pathlib import Path
from typing import Any

__all__ = [
    "CIFAR10_CLASSES",
    "DATASET_PLACEHOLDERS",
    "DATASET_REVISIONS",
    "DataUnavailableError",
    "data_root",
    "hub_offline",
    "load_cifar10",
    "load_hub_dataset",
    "reachable",
]

CIFAR10_CLASSES: tuple[str, ...] = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)

# Revisions of the Hub data sets the ``full`` profile loads, as for the models in
# vitcourse.hub.HUB_MODELS: each is a commit of the data set's repository, read off a public
# source that ties the hash to that repository (cited next to it, never guessed; not re-checked
# against the Hub from here, which this project can't reach). "beans", "cifar10" and "cppe-5"
# are the old ids of repositories the Hub moved under an owner in 2024 (huggingface/datasets
# issue 5096); a moved repository keeps its commits and the old id still resolves to it.
#: Hub data set id (as the course passes it) → the commit :func:`load_hub_dataset` asks for.
DATASET_REVISIONS: dict[str, str] = {
    # AI-Lab-Makerere/beans, the repository the id "beans" resolves to: this hash as BEANS_REVISION /
    # DATASET_REVISION next to that id, in .../beans/resolve/<this hash>/data/test.zip, and as "`beans` at
    # revision <this hash>" (10+ public GitHub files agree)
    "beans": "27aa014ce09b193e1a6f58112d4a66e0eddb69c5",
    # uoft-cs/cifar10: embeddings-benchmark/mteb, mteb/tasks/Image/Clustering/eng/CIFAR.py (the dataset
    # revision of CIFAR10Clustering); public GitHub files agree, among them Hugging Face caches of the old id,
    # datasets--cifar10/snapshots/<this hash>/plain_text/test-00000-of-00001.parquet (7 files)
    "cifar10": "0b2714987fa478483af9968de7c934580d0bb9a2",
    # aria-ml/maite-datasets README.md: a DatasetInfo printed by datasets 4 (List features) for the old id
    # "cppe-5" (1000 train / 29 test images, the 5 classes), whose files are
    # hf://datasets/cppe-5@<this hash>/data/{train,test}-00000-of-00001.parquet; one source only
    "rishitdagli/cppe-5": "66f6a5efd474e35bd7cb94bf15dea27d4c6ad3f8",
}  # fmt: skip

#: Ids of :data:`DATASET_REVISIONS` still at ``"main"`` (no commit known yet): none.
DATASET_PLACEHOLDERS: frozenset[str] = frozenset()

_SMOKE_HINT = "use PROFILE='smoke' (generated shapes, sklearn digits) or run where the network is available"


class DataUnavailableError(RuntimeError):
    """A data set is neither on disk nor downloadable from here."""


def data_root() -> Path:
    """Where downloads go: ``$VITCOURSE_DATA`` or ``~/.cache/vitcourse``."""
    return Path(os.environ.get("VITCOURSE_DATA", Path.home() / ".cache" / "vitcourse"))


def hub_offline() -> bool:
    """True when ``HF_HUB_OFFLINE`` (or ``HF_DATASETS_OFFLINE``) asks for no network."""
    flags = (os.environ.get("HF_HUB_OFFLINE", ""), os.environ.get("HF_DATASETS_OFFLINE", ""))
    return any(flag.strip().lower() in ("1", "true", "yes", "on") for flag in flags)


def reachable(host: str, port: int = 443, timeout: float = 3.0) -> bool:
    """Whether a TCP connection to ``host:port`` opens within ``timeout`` seconds, DNS lookup included.

    The lookup runs in a worker thread because ``getaddrinfo`` ignores socket timeouts
    and can hang for a long time on a machine without a resolver.
    """

    def connect() -> bool:
        with socket.create_connection((host, port), timeout=timeout):
            return True

    pool = concurrent.futures.ThreadPoolExecutor(max_workers=1)
    try:
        return pool.submit(connect).result(timeout=timeout)
    except (OSError, concurrent.futures.TimeoutError):
        return False
    finally:
        pool.shutdown(wait=False)  # a hung lookup must not hold us up


def load_cifar10(
    split: str = "train",
    root: str | Path | None = None,
    transform: Any = None,
    download: bool = True,
    timeout: float = 3.0,
):
    """CIFAR-10 (60,000 32×32 colour images, 10 classes) as a torchvision dataset.

    Args:
        split: ``"train"`` (50,000) or ``"test"`` (10,000).
        root: folder holding (or receiving) the data; default ``data_root() / "cifar10"``.
        transform: applied to each PIL image (e.g. :func:`~vitcourse.data.augment.build_transform`).
        download: fetch it if missing (about 170 MB).
        timeout: seconds to wait for the server before giving up.

    Returns:
        ``torchvision.datasets.CIFAR10`` yielding ``(image, label)``.

    Raises:
        DataUnavailableError: not on disk and not downloadable (offline, or ``download=False``).
    """
    from torchvision.datasets import CIFAR10

    if split not in ("train", "test"):
        raise ValueError(f'split must be "train" or "test", got {split!r}')
    root = Path(root) if root is not None else data_root() / "cifar10"
    try:  # already downloaded: no network needed
        return CIFAR10(str(root), train=split == "train", transform=transform, download=False)
    except RuntimeError:
        pass
    host = "www.cs.toronto.edu"
    if not download:
        raise DataUnavailableError(f"CIFAR-10 is not in {root} and download=False; pass download=True or {_SMOKE_HINT}")
    if not reachable(host, timeout=timeout):
        raise DataUnavailableError(f"CIFAR-10 is not in {root} and {host} can't be reached (offline?); {_SMOKE_HINT}")
    return CIFAR10(str(root), train=split == "train", transform=transform, download=True)


def load_hub_dataset(
    name: str, split: str | None = None, timeout: float = 3.0, revision: str | None = None, **kwargs: Any
):
    """``datasets.load_dataset(name, split=split, revision=..., **kwargs)``, pinned, failing fast and clearly offline.

    With ``HF_HUB_OFFLINE=1`` only the local cache is used (fast either way); otherwise
    the Hub must answer a TCP connection within ``timeout`` seconds before
    ``load_dataset`` (and its retries) is called.

    Args:
        name: Hub id, e.g. ``"beans"``, ``"cifar10"``, ``"rishitdagli/cppe-5"``.
        split: ``"train"``, ``"validation"``, ``"test"``, slices like ``"train[:10%]"``, or ``None`` for all.
        timeout: seconds to wait for the Hub.
        revision: the commit (or branch) to read; by default the one pinned in
            :data:`DATASET_REVISIONS`, and ``"main"`` for an id not listed there.
        **kwargs: passed to ``load_dataset`` (``cache_dir=``, ...).

    Returns:
        A ``datasets.Dataset`` (or ``DatasetDict`` when ``split`` is ``None``).

    Raises:
        DataUnavailableError: offline and not cached.
    """
    try:
        import datasets
    except ImportError as error:
        raise ImportError("Hub data sets need the datasets package: pip install 'vitcourse[hf]'") from error
    if not hub_offline() and not reachable("huggingface.co", timeout=timeout):
        raise DataUnavailableError(
            f"data set {name!r}: huggingface.co can't be reached (offline?); set HF_HUB_OFFLINE=1 to use a cached "
            f"copy, or {_SMOKE_HINT}"
        )
    try:
        return datasets.load_dataset(name, split=split, revision=revision or DATASET_REVISIONS.get(name), **kwargs)
    except OSError:  # datasets' ConnectionError, a missing cache entry
        if not hub_offline():
            raise
        raise DataUnavailableError(
            f"data set {name!r} is not in the local Hugging Face cache and HF_HUB_OFFLINE=1 forbids downloading "
            f"it; unset HF_HUB_OFFLINE where the network is available, or {_SMOKE_HINT}"
        ) from None  # one line, not the library's traceback
