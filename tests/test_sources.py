"""The table of real data that installs from the package registries (vitcourse.data.sources)."""

import io
import tarfile
import zipfile

import pytest

from vitcourse.data import sources
from vitcourse.data.remote import DataUnavailableError
from vitcourse.data.sources import SOURCES, Source


def test_every_source_says_what_it_is_and_how_to_get_it():
    for name, source in SOURCES.items():
        assert source.name == name and source.what and source.license
        assert source.kind in ("debian", "pypi", "npm", "installed")
        if source.kind in ("pypi", "npm"):
            assert source.digest and source.digest.split(":")[0].split("-")[0] in ("sha256", "sha512")
        assert source.package.split()[0] in source.install_hint() or source.kind in ("pypi", "npm")


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(ValueError, match="unknown data source 'cifar100'.*fashion_mnist"):
        sources.path("cifar100")


def test_a_missing_debian_source_names_the_package(monkeypatch):
    monkeypatch.setitem(SOURCES, "nothing", Source("nothing", "x", "MIT", "debian", "no-such-pkg", "/no/such/dir"))
    with pytest.raises(DataUnavailableError, match="apt-get install no-such-pkg"):
        sources.path("nothing")
    assert not sources.is_available("nothing")


def test_a_wrong_checksum_is_refused():
    with pytest.raises(DataUnavailableError, match="differs from the pinned"):
        sources._check_digest(b"tampered", "sha256:" + "0" * 64, "foolbox==3.3.4")


def _zip(files):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zipped:
        for name, data in files.items():
            zipped.writestr(name, data)
    return buffer.getvalue()


def _targz(files):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tarred:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tarred.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


@pytest.mark.parametrize("pack", [_zip, _targz])
def test_only_the_data_folder_is_unpacked(tmp_path, pack):
    archive = pack({"pkg/data/a.png": b"1", "pkg/data/sub/b.json": b"2", "pkg/code.py": b"import os"})
    assert sources._unpack(archive, "pkg/data", tmp_path) == 2
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file()) == [
        "a.png",
        "sub/b.json",
    ]


def test_fetched_sources_are_found_without_network(tmp_path, monkeypatch):
    monkeypatch.setenv("VITCOURSE_DATA", str(tmp_path))
    folder = tmp_path / "sources" / "foolbox_images"
    folder.mkdir(parents=True)
    (folder / ".complete").write_text("foolbox==3.3.4\n")
    assert sources.path("foolbox_images", download=False) == folder
    with pytest.raises(DataUnavailableError, match="python -m vitcourse.data.sources fetch gpt2_bpe"):
        sources.path("gpt2_bpe", download=False)
