"""Files written whole or not at all (tpbench.atomic): a failed write keeps the old file and
leaves no temporary one, and a full disk or read-only directory is one StorageError sentence."""

from __future__ import annotations

import errno
import os
import subprocess

import pytest

from tpbench.atomic import storage_error, write_bytes, write_text
from tpbench.errors import StorageError
from tpbench.loggers import CSVLogger


def fail_with(code: int):
    def fsync(fd: int) -> None:
        raise OSError(code, os.strerror(code))

    return fsync


@pytest.mark.parametrize(
    ("code", "words"),
    [(errno.ENOSPC, "the disk is full"), (errno.EROFS, "its directory is not writable")],
)
def test_a_failed_write_keeps_the_old_file(tmp_path, monkeypatch, code, words):
    path = tmp_path / "run.yaml"
    write_text(path, "state: running\n")
    monkeypatch.setattr(os, "fsync", fail_with(code))
    with pytest.raises(StorageError, match=f"Cannot write {path}: {words}"):
        write_text(path, "state: finished\n")
    assert path.read_text() == "state: running\n"
    assert [p.name for p in tmp_path.iterdir()] == ["run.yaml"]


def test_other_errors_are_not_storage_sentences():
    assert storage_error(OSError(errno.ENOENT, "No such file")) is None
    assert storage_error(ValueError("x")) is None


def test_a_real_full_disk(tmp_path):
    """A 64 KiB tmpfs (needs root): a 200 KB checkpoint-sized write fails whole."""
    disk = tmp_path / "disk"
    disk.mkdir()
    mount = ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(disk)]
    if os.geteuid() != 0 or subprocess.run(mount, capture_output=True).returncode != 0:
        pytest.skip("mounting a small tmpfs needs root")
    try:
        with pytest.raises(StorageError, match="the disk is full"):
            write_bytes(disk / "epoch_000.ckpt", bytes(200_000))
        assert list(disk.iterdir()) == []
    finally:
        subprocess.run(["umount", str(disk)], check=True)


def test_metrics_csv_keeps_its_rows_when_a_save_fails(tmp_path, monkeypatch):
    writer = CSVLogger(str(tmp_path), name="csv", version="").experiment
    writer.log_metrics({"epoch": 0, "val/err": 0.5}, step=1)
    writer.save()
    before = (tmp_path / "csv" / "metrics.csv").read_text()
    writer.log_metrics({"epoch": 1, "val/err": 0.4, "train/err": 0.3}, step=2)
    monkeypatch.setattr(os, "fsync", fail_with(errno.ENOSPC))
    with pytest.raises(StorageError, match="the disk is full"):
        writer.save()
    assert (tmp_path / "csv" / "metrics.csv").read_text() == before
    monkeypatch.undo()
    writer.save()  # the rows that could not be written are still there to write
    lines = (tmp_path / "csv" / "metrics.csv").read_text().splitlines()
    assert lines == ["epoch,step,train/err,val/err", "0,1,,0.5", "1,2,0.3,0.4"]
