"""Reading members of zip and tar archives in memory, refusing unsafe paths (used by ``data``).

The loaders never extract archives to disk; they read each member into memory. Member
names are still checked, so an archive that tries to reach outside its folder (a
"zip-slip" path such as ``../../etc/passwd``) is refused with a clear error.
"""

from __future__ import annotations

import pathlib
import posixpath
import tarfile
import zipfile
import zlib


def check_member_name(name: str, archive: pathlib.Path) -> None:
    """Raises if an archive member's path would land outside the archive's folder.

    Args:
        name: The member name as stored in the archive.
        archive: The archive, for the error message.

    Raises:
        ValueError: If the name is absolute or climbs out with ``..``.
    """
    normalized = posixpath.normpath(name.replace("\\", "/"))
    if (
        normalized.startswith("/")
        or normalized == ".."
        or normalized.startswith("../")
        or (len(normalized) > 1 and normalized[1] == ":")
    ):
        raise ValueError(
            f"Archive {archive} contains the unsafe path {name!r}, which points outside "
            "the extraction folder; refusing to read it. Delete the file and download "
            "the official archive again."
        )


def open_zip(path: pathlib.Path) -> zipfile.ZipFile:
    """Opens a zip archive after checking every member name.

    Args:
        path: The zip file.

    Returns:
        The open archive (use it as a context manager).

    Raises:
        ValueError: If the file is not a complete zip archive or holds an unsafe path.
    """
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, EOFError) as error:
        raise ValueError(
            f"{path} is not a readable zip archive ({error}); it may be truncated or "
            "corrupt. Delete it and rerun to download it again."
        ) from error
    for name in archive.namelist():
        check_member_name(name, path)
    return archive


def read_zip_member(archive: zipfile.ZipFile, name: str) -> bytes:
    """Reads one member of an open zip archive, turning corruption into a clear error.

    Args:
        archive: An archive from :func:`open_zip`.
        name: The member to read.

    Returns:
        The member's bytes.

    Raises:
        ValueError: If the member's data is damaged.
    """
    try:
        return archive.read(name)
    except (zipfile.BadZipFile, EOFError, OSError) as error:
        raise ValueError(
            f"{archive.filename}: member {name!r} is damaged ({error}); the archive is "
            "corrupt or truncated. Delete it and rerun to download it again."
        ) from error


def read_tar_members(path: pathlib.Path, wanted: set[str]) -> dict[str, bytes]:
    """Reads the tar members whose base names are in ``wanted``.

    Args:
        path: A ``.tar`` or ``.tar.gz`` file.
        wanted: Base names of the members to read (for example ``{"data_batch_1"}``).

    Returns:
        A mapping from base name to bytes, for the wanted members present.

    Raises:
        ValueError: If the archive is truncated, corrupt or holds an unsafe path.
    """
    found: dict[str, bytes] = {}
    try:
        with tarfile.open(path, "r:*") as archive:
            for member in archive:
                check_member_name(member.name, path)
                base = posixpath.basename(member.name)
                if member.isfile() and base in wanted:
                    handle = archive.extractfile(member)
                    found[base] = handle.read() if handle else b""
    except (tarfile.TarError, EOFError, OSError, zlib.error) as error:
        raise ValueError(
            f"{path} is not a readable tar archive ({error}); it may be truncated or "
            "corrupt. Delete it and rerun to download it again."
        ) from error
    return found
