"""Fetching an archive safely: temporary name, checksum, then rename (used by ``data``).

A download lands in ``<name>.part`` next to its final place, shows a progress bar, and
is renamed only once its size and md5 checksum are right. A dropped connection or a
wrong checksum leaves nothing under the final name, so a rerun starts clean.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import pathlib
import urllib.error
import urllib.request

from tqdm.auto import tqdm

CHUNK_BYTES = 1 << 20


class DownloadError(OSError):
    """A download that did not complete (network error or dropped connection)."""


def md5_of(path: str | os.PathLike) -> str:
    """Returns the hex md5 digest of a file, read in chunks.

    Args:
        path: The file to hash.

    Returns:
        The md5 digest as 32 hex characters.
    """
    digest = hashlib.md5()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(CHUNK_BYTES), b""):
            digest.update(chunk)
    return digest.hexdigest()


def download(
    url: str, destination: pathlib.Path, expected_md5: str, *, timeout: float = 60
) -> None:
    """Downloads ``url`` to ``destination``, verified by md5, never leaving a partial file.

    Args:
        url: The address to fetch.
        destination: The final path; its folder is created if needed.
        expected_md5: The md5 the complete file must have.
        timeout: Seconds to wait for the server before giving up.

    Raises:
        DownloadError: If the connection fails or ends before the whole file arrived.
        ValueError: If the downloaded file's checksum is not ``expected_md5``.
    """
    destination = pathlib.Path(destination)
    destination.parent.mkdir(parents=True, exist_ok=True)
    partial = destination.with_name(destination.name + ".part")
    digest = hashlib.md5()
    received = 0
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, open(partial, "wb") as out:
            total = int(response.headers.get("Content-Length") or 0) or None
            with tqdm(total=total, unit="B", unit_scale=True, desc=destination.name) as bar:
                for chunk in iter(lambda: response.read(CHUNK_BYTES), b""):
                    out.write(chunk)
                    digest.update(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
        if total is not None and received != total:
            raise DownloadError(
                f"Download of {url} stopped after {received:,} of {total:,} bytes; "
                "rerun to try again."
            )
    except (urllib.error.URLError, http.client.HTTPException, OSError) as error:
        partial.unlink(missing_ok=True)
        if isinstance(error, DownloadError):
            raise
        raise DownloadError(
            f"Could not download {url} ({error}). Check your connection, or put the file "
            f"at {destination} by hand and rerun."
        ) from error
    actual_md5 = digest.hexdigest()
    if actual_md5 != expected_md5:
        partial.unlink(missing_ok=True)
        raise ValueError(
            f"Checksum mismatch for {url}: expected md5 {expected_md5}, got {actual_md5}. "
            "The file was not kept; rerun to download it again, or check your mirror."
        )
    os.replace(partial, destination)
