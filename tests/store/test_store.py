"""Object storage by URL: local folders and S3 (a moto server on loopback) behave the same."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from rapid import store


@pytest.fixture(scope="module")
def s3_base(tmp_path_factory) -> Iterator[str]:
    """A bucket on a moto S3 server bound to 127.0.0.1."""
    import boto3
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    mp = pytest.MonkeyPatch()
    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": endpoint}.items():
        mp.setenv(key, value)
    boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket="rapid-test")
    yield "s3://rapid-test/root"
    mp.undo()
    server.stop()


@pytest.fixture(params=["file", "s3"])
def base(request, tmp_path) -> str:
    if request.param == "file":
        return (tmp_path / "store").as_uri()
    return request.getfixturevalue("s3_base") + f"/{tmp_path.name}"


def test_write_read_size_checksum(base):
    url = store.join(base, "products", "20281008", "jid1", "diff.fits")
    store.write_bytes(url, b"abc" * 1000)
    assert store.read_bytes(url) == b"abc" * 1000
    assert store.size(url) == 3000
    assert store.exists(url)
    assert store.md5(url) == store.md5_bytes(b"abc" * 1000) == "8f33d0ecfe648a745b169baf8a77658b"
    store.write_bytes(url, b"new")  # overwrite in place
    assert store.read_bytes(url) == b"new"


def test_missing_object_is_file_not_found(base):
    with pytest.raises(FileNotFoundError):
        store.read_bytes(store.join(base, "nope.json"))
    assert not store.exists(store.join(base, "nope.json"))
    assert store.listdir(store.join(base, "empty")) == []


def test_listdir_and_local_copy(base):
    for name in ("a.json", "b.json"):
        store.write_bytes(store.join(base, "specs", name), name.encode())
    assert sorted(u.rsplit("/", 1)[1] for u in store.listdir(store.join(base, "specs"))) == \
        ["a.json", "b.json"]
    with store.local_copy(store.join(base, "specs", "a.json")) as path:
        assert path.read_bytes() == b"a.json"


def test_local_write_leaves_no_partial_file(tmp_path):
    url = (tmp_path / "x" / "manifest.json").as_uri()
    store.write_bytes(url, b"{}")
    assert [p.name for p in (tmp_path / "x").iterdir()] == ["manifest.json"]


def test_plain_paths_and_unknown_schemes(tmp_path):
    assert store.normalize_url(tmp_path / "a") == (tmp_path / "a").as_uri()
    with pytest.raises(store.StoreError, match="unsupported storage URL scheme 'ftp'"):
        store.read_bytes("ftp://host/x")


def test_unreachable_s3_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "x")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "x")
    monkeypatch.setattr(store.time, "sleep", lambda s: None)
    with pytest.raises(store.StoreError, match="cannot read s3://bucket/key"):
        store.read_bytes("s3://bucket/key")
