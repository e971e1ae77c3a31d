"""Getting the files: download from file:// URLs (never the network), checksums, clear errors."""

from __future__ import annotations

import hashlib
import io
import pickle
import subprocess
import sys
import tarfile
import urllib.error
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.test_data import SHARED, write_cifar10, write_mnist
from tpbench.data.cifar import CIFAR10DataModule
from tpbench.data.download import Remote, check_checksum
from tpbench.data.imagenet32 import ImageNet32DataModule
from tpbench.data.mnist import FashionMNISTDataModule, MNISTDataModule
from tpbench.errors import DataError


def offline(url: str, dest: Path) -> None:
    raise urllib.error.URLError("Name or service not known")


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def cifar_archive(tmp_path: Path) -> Path:
    """A cifar-10-python.tar.gz holding small batches in the official layout."""
    write_cifar10(tmp_path / "src")
    archive = tmp_path / "mirror" / "cifar-10-python.tar.gz"
    archive.parent.mkdir()
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(tmp_path / "src" / "cifar-10-batches-py", arcname="cifar-10-batches-py")
    return archive


def patch_cifar_remote(monkeypatch, archive: Path, checksum: str) -> None:
    remote = Remote((archive.as_uri(),), checksum, archive=True)
    monkeypatch.setattr(CIFAR10DataModule, "remotes", (remote,))


# --- missing files --------------------------------------------------------------------------
def test_missing_dir_names_dir_and_files(tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(DataError) as info:
        CIFAR10DataModule(data_dir=str(missing)).setup()
    message = str(info.value)
    assert f"CIFAR-10 data not found in {missing}" in message
    assert "cifar-10-batches-py/{data_batch_1..5, test_batch}" in message
    assert "does not exist" in message and not missing.exists()


def test_offline_is_one_error_naming_dir_files_and_reason(tmp_path):
    with pytest.raises(DataError) as info:
        MNISTDataModule(data_dir=str(tmp_path), downloader=offline).setup()
    message = str(info.value)
    assert f"MNIST data not found in {tmp_path}" in message
    assert "MNIST/raw/{train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz" in message
    assert "Name or service not known" in message and message.count(". ") == 0
    assert not list((tmp_path / "MNIST" / "raw").iterdir())  # no partial files left


def test_downloads_off_and_imagenet32_say_what_to_do(tmp_path):
    with pytest.raises(DataError, match="data.download=false"):
        CIFAR10DataModule(data_dir=str(tmp_path), download=False).setup()
    with pytest.raises(DataError, match=r"Imagenet32_train/train_data_batch_1\.\.10.*login"):
        ImageNet32DataModule(data_dir=str(tmp_path)).setup()


def test_train_py_missing_cifar_is_one_sentence(tmp_path):
    """The user's path: one sentence, non-zero exit, no traceback."""
    result = subprocess.run(
        [sys.executable, "train.py", "data=cifar10", "data.data_dir=/nonexistent",
         f"paths.log_dir={tmp_path}"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    output = result.stdout + result.stderr
    assert result.returncode != 0 and "Traceback" not in output
    errors = [line for line in output.splitlines() if "ERROR" in line]
    assert len(errors) == 1 and "CIFAR-10 data not found in /nonexistent" in errors[0]


# --- downloads --------------------------------------------------------------------------------
def test_download_from_file_url_checks_md5_and_unpacks(tmp_path, monkeypatch):
    archive = cifar_archive(tmp_path)
    patch_cifar_remote(monkeypatch, archive, md5(archive))
    data = tmp_path / "data"
    data.mkdir()
    dm = CIFAR10DataModule(data_dir=str(data), val_size=5, verify=False)
    dm.setup()
    assert (data / "cifar-10-python.tar.gz").is_file()
    assert dm.splits["train"][0].shape == (55, 3, 32, 32)


def test_download_checksum_mismatch_is_an_error_and_leaves_nothing(tmp_path, monkeypatch):
    archive = cifar_archive(tmp_path)
    patch_cifar_remote(monkeypatch, archive, "0" * 32)
    data = tmp_path / "data"
    data.mkdir()
    with pytest.raises(DataError, match=r"has MD5 [0-9a-f]{32} but the official file has 0{32}"):
        CIFAR10DataModule(data_dir=str(data)).setup()
    assert not list(data.iterdir())


def test_mirror_serving_another_file_fails_the_official_md5(tmp_path):
    archive = cifar_archive(tmp_path)
    data = tmp_path / "data"
    data.mkdir()
    dm = CIFAR10DataModule(data_dir=str(data), mirror=archive.parent.as_uri())
    with pytest.raises(DataError, match="c58f30108f718f92721af3b95e74349a"):
        dm.setup()


def test_mnist_download_from_mirror(tmp_path, monkeypatch):
    write_mnist(tmp_path / "src")
    raw = tmp_path / "src" / "MNIST" / "raw"
    monkeypatch.setattr(MNISTDataModule, "md5", {f.name: md5(f) for f in raw.iterdir()})
    data = tmp_path / "data"
    data.mkdir()
    dm = MNISTDataModule(data_dir=str(data), mirror=raw.as_uri(), val_size=10)
    dm.setup()
    assert dm.splits["train"][0].shape == (50, 1, 28, 28)


# --- checksums and corrupt files ------------------------------------------------------------
def test_existing_archive_with_wrong_md5_is_never_used(tmp_path):
    (tmp_path / "cifar-10-python.tar.gz").write_bytes(b"not the archive")
    with pytest.raises(DataError, match="corrupt or another version"):
        CIFAR10DataModule(data_dir=str(tmp_path), download=False).setup()


def test_verify_checks_existing_files(tmp_path):
    write_mnist(tmp_path)
    with pytest.raises(DataError, match="train-images-idx3-ubyte.gz has MD5.*data.verify=false"):
        MNISTDataModule(data_dir=str(tmp_path), verify=True).setup()


@pytest.mark.skipif(not (SHARED / "SHA256SUMS").is_file(), reason="real MNIST not present")
def test_real_files_match_published_md5_and_sha256():
    for line in (SHARED / "SHA256SUMS").read_text().splitlines():
        digest, name = line.split()
        check_checksum(SHARED / name, digest, "unexpected")  # SHA-256
        table = (MNISTDataModule if name.startswith("MNIST/") else FashionMNISTDataModule).md5
        check_checksum(SHARED / name, table[Path(name).name], "unexpected")  # MD5


def test_corrupt_files_are_clear_errors(tmp_path):
    write_mnist(tmp_path)
    image_file = tmp_path / "MNIST" / "raw" / "train-images-idx3-ubyte.gz"
    image_file.write_bytes(image_file.read_bytes()[:40])  # truncated gzip
    with pytest.raises(DataError, match="train-images-idx3-ubyte.gz is not a readable IDX file"):
        MNISTDataModule(data_dir=str(tmp_path), verify=False).setup()
    write_cifar10(tmp_path)
    batch = tmp_path / "cifar-10-batches-py" / "data_batch_3"
    batch.write_bytes(b"\x80\x02garbage")
    with pytest.raises(DataError, match="data_batch_3 is not a readable CIFAR batch"):
        CIFAR10DataModule(data_dir=str(tmp_path), verify=False).setup()


def test_pickles_cannot_run_code(tmp_path):
    write_cifar10(tmp_path)
    batch = tmp_path / "cifar-10-batches-py" / "test_batch"
    batch.write_bytes(pickle.dumps({"data": io.BytesIO(b"x"), "labels": []}))
    with pytest.raises(DataError, match="_io.BytesIO, which is not numpy data"):
        CIFAR10DataModule(data_dir=str(tmp_path), verify=False).setup("test")


def test_archive_that_is_not_a_tar_is_a_clear_error(tmp_path, monkeypatch):
    bogus = tmp_path / "mirror" / "cifar-10-python.tar.gz"
    bogus.parent.mkdir()
    bogus.write_bytes(b"definitely not a tar")
    patch_cifar_remote(monkeypatch, bogus, md5(bogus))
    data = tmp_path / "data"
    data.mkdir()
    with pytest.raises(DataError, match="could not be unpacked"):
        CIFAR10DataModule(data_dir=str(data)).setup()
