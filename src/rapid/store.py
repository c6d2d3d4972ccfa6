"""Object storage by URL (``file://``, ``s3://``, plain paths) through fsspec.

The store knows bytes and URLs, never what a product means. Writes are atomic: a reader sees the whole
object or none of it (a local file is written beside its target and renamed; an S3 PUT is atomic).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, TypeVar
from urllib.parse import urlparse

import fsspec

T = TypeVar("T")

try:  # S3 faults surface as botocore errors, which are not OSErrors
    from botocore.exceptions import BotoCoreError as _BotoCoreError
except ImportError:  # pragma: no cover - botocore comes with s3fs
    _BotoCoreError = OSError  # type: ignore[misc, assignment]
_TRANSIENT = (OSError, ConnectionError, TimeoutError, _BotoCoreError)


class StoreError(OSError):
    """Storage that cannot be reached or an object that cannot be read or written."""


def normalize_url(url: str | os.PathLike) -> str:
    """A plain path becomes an absolute ``file://`` URL; URLs are returned as they are."""
    text = os.fspath(url)
    if "://" in text:
        return text
    return Path(text).expanduser().resolve().as_uri()


def join(base: str, *parts: str) -> str:
    """``base`` and ``parts`` joined with ``/``."""
    out = base.rstrip("/")
    for part in parts:
        out += "/" + str(part).strip("/")
    return out


def _split(url: str) -> tuple[fsspec.AbstractFileSystem, str]:
    url = normalize_url(url)
    scheme = urlparse(url).scheme
    if scheme == "file":
        return fsspec.filesystem("file"), urlparse(url).path
    if scheme == "s3":
        return _s3_filesystem(), url[len("s3://"):]
    raise StoreError(f"unsupported storage URL scheme {scheme!r} in {url}")


def _s3_filesystem() -> fsspec.AbstractFileSystem:
    # An endpoint override (an S3-compatible service or a local emulator) comes from the standard
    # AWS variable so that jobs, which never see the operator's settings file, resolve it the same way.
    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    kwargs: dict[str, Any] = {"skip_instance_cache": True,
                              "config_kwargs": {"connect_timeout": 5, "read_timeout": 60,
                                                "retries": {"max_attempts": 2}}}
    if endpoint:
        kwargs["client_kwargs"] = {"endpoint_url": endpoint}
    return fsspec.filesystem("s3", **kwargs)


def _retrying(what: str, url: str, func: Callable[[], T], *, attempts: int = 4) -> T:
    """Run ``func``; retry transient storage faults with back-off, then raise one clear error."""
    delay = 0.5
    for attempt in range(1, attempts + 1):
        try:
            return func()
        except FileNotFoundError:
            raise
        except _TRANSIENT as exc:
            if attempt == attempts:
                raise StoreError(f"cannot {what} {url}: {exc}") from exc
            time.sleep(delay)
            delay *= 2
    raise AssertionError("unreachable")


def read_bytes(url: str) -> bytes:
    """The whole object at ``url``; FileNotFoundError if there is none."""
    fs, path = _split(url)
    return _retrying("read", url, lambda: fs.cat_file(path))


def write_bytes(url: str, data: bytes) -> None:
    """Write ``data`` to ``url`` atomically."""
    fs, path = _split(url)
    if fs.protocol == "file" or "file" in fs.protocol:
        def local() -> None:
            target = Path(path)
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
            try:
                with open(tmp, "wb") as fh:
                    fh.write(data)
                    fh.flush()
                    os.fsync(fh.fileno())
                os.replace(tmp, target)
            finally:
                tmp.unlink(missing_ok=True)
        _retrying("write", url, local)
    else:
        _retrying("write", url, lambda: fs.pipe_file(path, data))


def exists(url: str) -> bool:
    fs, path = _split(url)
    return bool(_retrying("check", url, lambda: fs.exists(path)))


def size(url: str) -> int:
    fs, path = _split(url)
    return int(_retrying("stat", url, lambda: fs.size(path)))


def listdir(url: str) -> list[str]:
    """URLs of the objects directly under ``url`` (empty if there is nothing there)."""
    fs, path = _split(url)
    try:
        names = _retrying("list", url, lambda: fs.ls(path, detail=False))
    except FileNotFoundError:
        return []
    base = normalize_url(url)
    return [join(base, Path(n).name) for n in names]


def md5_bytes(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def md5(url: str, *, chunk: int = 1 << 22) -> str:
    """MD5 hex digest of the object at ``url``, streamed."""
    fs, path = _split(url)
    digest = hashlib.md5(usedforsecurity=False)

    def run() -> str:
        with fs.open(path, "rb") as fh:
            while block := fh.read(chunk):
                digest.update(block)
        return digest.hexdigest()

    return _retrying("read", url, run)


@contextmanager
def local_copy(url: str) -> Iterator[Path]:
    """A local file path holding the object at ``url`` (the file itself when it is local)."""
    fs, path = _split(url)
    if "file" in fs.protocol:
        if not Path(path).exists():
            raise FileNotFoundError(path)
        yield Path(path)
        return
    tmpdir = tempfile.mkdtemp(prefix="rapid-")
    try:
        local = Path(tmpdir) / Path(path).name
        _retrying("download", url, lambda: fs.get_file(path, str(local)))
        yield local
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)


def put_file(local: str | os.PathLike, url: str) -> None:
    """Copy a local file to ``url`` atomically."""
    fs, path = _split(url)
    if "file" in fs.protocol:
        write_bytes(url, Path(local).read_bytes())
    else:
        _retrying("upload", url, lambda: fs.put_file(os.fspath(local), path))
