"""Tests for helpers.archives.download and load_dataset's download path, against a loopback server.

A ``http.server`` in a thread on 127.0.0.1 (a free port) serves the files; nothing leaves
the machine. The "official" URL in the patched archive table also points at that server,
where it answers 404, so a test that ignored the mirror would fail at once.
"""

from __future__ import annotations

import hashlib
import http.server
import threading
import time
import types

import numpy as np
import pytest

from helpers import data
from helpers.archives import cifar10
from helpers.archives.download import DownloadError, download, md5_of
from helpers.data import load_dataset

pytestmark = pytest.mark.usefixtures("isolated_cache")


@pytest.fixture
def server():
    """A loopback HTTP server: ``files`` maps a path to its bytes; paths in ``dropped``
    announce their full Content-Length, send half, then close the connection."""
    state = types.SimpleNamespace(files={}, dropped=set(), requests=[], watch=None, seen=[])

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            state.requests.append(self.path)
            body = state.files.get(self.path)
            if body is None:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.path not in state.dropped:
                self.wfile.write(body)
                return
            self.wfile.write(body[: len(body) // 2])
            if state.watch is not None:  # what the client has on disk mid-download
                state.seen = files_being_written(state.watch)
            # HTTP/1.0: the server closes the connection once this returns.

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    state.url = f"http://127.0.0.1:{httpd.server_port}/"
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


@pytest.fixture
def payload() -> bytes:
    """2.5 MB of random bytes: several 1 MB chunks, so the progress bar moves."""
    return np.random.default_rng(0).integers(0, 256, 5 << 19, dtype=np.uint8).tobytes()


@pytest.fixture
def served_cifar10(server, cifar10_files, tmp_path, monkeypatch):
    """Serves a tiny CIFAR-10 tarball and makes load_dataset expect its md5."""
    tarball = cifar10_files.write_tarball(tmp_path / "served" / cifar10.ARCHIVE)
    server.files["/" + cifar10.ARCHIVE] = tarball
    md5 = hashlib.md5(tarball).hexdigest()
    official = server.url + "official/"  # answers 404: only the mirror can succeed
    monkeypatch.setitem(data.ARCHIVES, "cifar10", [("cifar10", cifar10.ARCHIVE, official, md5)])
    return types.SimpleNamespace(tarball=tarball, md5=md5, arrays=cifar10_files.arrays)


def files_being_written(folder, timeout: float = 5.0) -> list[str]:
    """Waits until a non-empty file appears in ``folder``; returns the names there."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        names = sorted(p.name for p in folder.iterdir() if p.is_file() and p.stat().st_size)
        if names:
            return names
        time.sleep(0.01)
    return []


def leftovers(folder) -> list[str]:
    """Names of temporary download files anywhere under ``folder``."""
    return [p.name for p in folder.rglob("*.part")]


# --- helpers.archives.download.download --------------------------------------------------------


def test_complete_download_is_verified_renamed_and_shows_progress(
    server, payload, tmp_path, capsys
):
    server.files["/file.bin"] = payload
    destination = tmp_path / "new" / "folder" / "file.bin"
    download(server.url + "file.bin", destination, hashlib.md5(payload).hexdigest(), timeout=10)
    assert destination.read_bytes() == payload
    assert md5_of(destination) == hashlib.md5(payload).hexdigest()
    assert leftovers(tmp_path) == []
    progress = capsys.readouterr().err
    assert "file.bin" in progress and "100%" in progress


def test_dropped_connection_leaves_nothing_and_a_rerun_succeeds(server, payload, tmp_path):
    server.files["/file.bin"] = payload
    server.dropped.add("/file.bin")
    destination = tmp_path / "file.bin"
    server.watch = tmp_path
    md5 = hashlib.md5(payload).hexdigest()
    with pytest.raises(
        DownloadError, match=r"file\.bin stopped after 1,310,720 of 2,621,440 bytes; rerun"
    ):
        download(server.url + "file.bin", destination, md5, timeout=10)
    assert server.seen == ["file.bin.part"]  # the bytes went to a temporary name
    assert not destination.exists()
    assert leftovers(tmp_path) == []

    server.dropped.clear()
    download(server.url + "file.bin", destination, md5, timeout=10)
    assert destination.read_bytes() == payload
    assert leftovers(tmp_path) == []


def test_checksum_mismatch_keeps_nothing(server, payload, tmp_path):
    server.files["/file.bin"] = payload
    destination = tmp_path / "file.bin"
    wrong = hashlib.md5(b"another file").hexdigest()
    with pytest.raises(
        ValueError,
        match=rf"Checksum mismatch for .*file\.bin: expected md5 {wrong}, got {hashlib.md5(payload).hexdigest()}",
    ):
        download(server.url + "file.bin", destination, wrong, timeout=10)
    assert not destination.exists()
    assert leftovers(tmp_path) == []


def test_http_error_is_a_download_error(server, tmp_path):
    destination = tmp_path / "missing.bin"
    with pytest.raises(DownloadError, match=r"Could not download .*missing\.bin \(HTTP Error 404"):
        download(server.url + "missing.bin", destination, "0" * 32, timeout=10)
    assert not destination.exists()
    assert leftovers(tmp_path) == []


# --- load_dataset downloading from a mirror -------------------------------------------


def test_load_dataset_downloads_from_the_mirror_argument(server, served_cifar10, tmp_path, capsys):
    data_dir = tmp_path / "data"
    dataset = load_dataset("cifar10", data_dir=data_dir, mirror_url=server.url)
    archive = data_dir / "cifar10" / cifar10.ARCHIVE
    assert archive.read_bytes() == served_cifar10.tarball
    assert leftovers(data_dir) == []
    assert server.requests == ["/" + cifar10.ARCHIVE]
    assert cifar10.ARCHIVE in capsys.readouterr().err  # the progress bar
    assert len(dataset.train[1]) == 18
    np.testing.assert_array_equal(dataset.test[1], served_cifar10.arrays["test_batch"][1])


def test_load_dataset_takes_the_mirror_from_the_environment(
    server, served_cifar10, tmp_path, monkeypatch
):
    monkeypatch.setenv(data.MIRROR_VARIABLE, server.url.rstrip("/"))
    data_dir = tmp_path / "data"
    first = load_dataset("cifar10", data_dir=data_dir)
    assert (data_dir / "cifar10" / cifar10.ARCHIVE).read_bytes() == served_cifar10.tarball
    second = load_dataset("cifar10", data_dir=data_dir)  # already there: no new request
    assert server.requests == ["/" + cifar10.ARCHIVE]
    np.testing.assert_array_equal(first.validation[0], second.validation[0])


def test_load_dataset_dropped_download_then_rerun(server, served_cifar10, tmp_path):
    server.dropped.add("/" + cifar10.ARCHIVE)
    data_dir = tmp_path / "data"
    with pytest.raises(
        DownloadError, match=r"cifar-10-python\.tar\.gz stopped after [\d,]+ of [\d,]+ bytes"
    ):
        load_dataset("cifar10", data_dir=data_dir, mirror_url=server.url)
    assert not (data_dir / "cifar10" / cifar10.ARCHIVE).exists()
    assert leftovers(data_dir) == []

    server.dropped.clear()
    dataset = load_dataset("cifar10", data_dir=data_dir, mirror_url=server.url)
    assert len(dataset.validation[1]) == 7
    assert leftovers(data_dir) == []


def test_load_dataset_checksum_mismatch_keeps_nothing(
    server, served_cifar10, tmp_path, monkeypatch
):
    wrong = "0" * 32
    monkeypatch.setitem(data.ARCHIVES, "cifar10", [("cifar10", cifar10.ARCHIVE, server.url, wrong)])
    data_dir = tmp_path / "data"
    with pytest.raises(
        ValueError, match=f"Checksum mismatch .*expected md5 {wrong}, got {served_cifar10.md5}"
    ):
        load_dataset("cifar10", data_dir=data_dir)
    assert not (data_dir / "cifar10" / cifar10.ARCHIVE).exists()
    assert leftovers(data_dir) == []
