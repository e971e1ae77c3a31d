"""Getting dataset files: download from the official location (or a mirror), checksum, unpack.

A `Remote` is one official file with its published checksum. `fetch` downloads it unless a copy
is already there, checks the checksum of the download or of the copy (a mismatch is a DataError,
never silent use) and unpacks archives. The downloader is a plain function `(url, dest) -> None`
so tests can pass their own; `file://` URLs work with the default one.
"""

from __future__ import annotations

import hashlib
import logging
import re
import shutil
import tarfile
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from tpbench.errors import DataError

log = logging.getLogger(__name__)

Downloader = Callable[[str, Path], None]
_DIGESTS = {32: "md5", 64: "sha256"}  # hex length -> hash


@dataclass(frozen=True)
class Remote:
    """One official file: saved to <data_dir>/<subdir>/<filename>; archives unpacked there."""

    urls: tuple[str, ...]  # official locations, tried in order
    checksum: str  # MD5 (32 hex digits) or SHA-256 (64) of the file
    subdir: str = ""
    archive: bool = False  # a tar archive

    @property
    def filename(self) -> str:
        return self.urls[0].rsplit("/", 1)[-1]


class DownloadFailed(Exception):
    """No URL of a remote could be fetched (offline, HTTP error, downloads turned off)."""


def urllib_download(url: str, dest: Path, timeout: float = 60.0) -> None:
    """Stream `url` (http, https or file) into `dest`."""
    with urllib.request.urlopen(url, timeout=timeout) as response, dest.open("wb") as f:
        shutil.copyfileobj(response, f, length=1 << 20)


def file_digest(path: Path, algorithm: str) -> str:
    digest = hashlib.new(algorithm)
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def check_checksum(path: Path, expected: str, remedy: str) -> None:
    """DataError unless the file's MD5 / SHA-256 (by the length of `expected`) matches."""
    algorithm = _DIGESTS[len(expected)]
    actual = file_digest(path, algorithm)
    if actual != expected.lower():
        raise DataError(
            f"{path} has {algorithm.upper()} {actual} but the official file has {expected}: "
            f"{remedy}."
        )


def fetch(remote: Remote, root: Path, downloader: Downloader, mirror: str | None = None) -> None:
    """Put `remote` under `root` (downloading it unless a copy is there), verified and unpacked."""
    dest = root / remote.subdir / remote.filename
    if dest.exists():
        check_checksum(dest, remote.checksum, "it is corrupt or another version; delete it")
    else:
        urls = [f"{mirror.rstrip('/')}/{remote.filename}"] if mirror else remote.urls
        _download(urls, dest, remote.checksum, downloader)
    if remote.archive:
        _unpack(dest, dest.parent)


def _download(urls: Iterable[str], dest: Path, checksum: str, downloader: Downloader) -> None:
    """Try each URL into <dest>.part; the first that arrives must match `checksum`."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    failures = []
    for url in urls:
        log.info("Downloading %s to %s", url, dest)
        try:
            downloader(url, part)
        except (OSError, ValueError) as e:  # URLError, HTTPError and timeouts are OSErrors
            part.unlink(missing_ok=True)
            failures.append(f"{url}: {e}")
            continue
        try:
            check_checksum(part, checksum, f"the download from {url} is corrupt or not official")
        except DataError:
            part.unlink()
            raise
        part.replace(dest)
        return
    raise DownloadFailed("; ".join(failures))


def _unpack(archive: Path, dest: Path) -> None:
    log.info("Unpacking %s", archive)
    try:
        with tarfile.open(archive) as tar:
            tar.extractall(dest, filter="data")  # refuses absolute paths, links out, devices
    except (tarfile.TarError, OSError) as e:
        raise DataError(f"{archive} could not be unpacked ({e}); delete it and retry.") from e


def describe(files: Iterable[Path]) -> str:
    """'dir/{batch_1..5, test}, other/c': the files grouped by folder, for error messages."""
    groups: dict[str, list[str]] = {}
    for f in files:
        groups.setdefault(f.parent.as_posix(), []).append(f.name)
    parts = []
    for folder, names in groups.items():
        names = _number_ranges(names)
        inner = names[0] if len(names) == 1 else "{" + ", ".join(names) + "}"
        parts.append(inner if folder == "." else f"{folder}/{inner}")
    return ", ".join(parts)


def _number_ranges(names: list[str]) -> list[str]:
    """['b_1', 'b_2', 'b_3', 't'] -> ['b_1..3', 't']: runs of consecutive numbered names."""
    out: list[str] = []
    for name in names:
        match = re.fullmatch(r"(.*?)(\d+)", name)
        last = re.fullmatch(r"(.*?)(\d+)(?:\.\.(\d+))?", out[-1]) if out else None
        if match and last and last[1] == match[1] and int(last[3] or last[2]) + 1 == int(match[2]):
            out[-1] = f"{last[1]}{last[2]}..{match[2]}"
        else:
            out.append(name)
    return out
