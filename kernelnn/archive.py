"""Integrity of the files kernelnn writes with ``torch.save`` (checkpoints, data caches): zip archives whose every
entry carries a CRC-32. ``torch.load`` does not check it, so a bit-flipped tensor would load silently."""

from __future__ import annotations

import zipfile
from pathlib import Path


def verify_archive(path: str | Path, what: str = "file") -> None:
    """Raise ``ValueError`` naming ``what`` and ``path`` unless it is a whole archive whose entries match their
    checksums."""
    try:
        with zipfile.ZipFile(path) as archive:
            damaged = archive.testzip()
    except (zipfile.BadZipFile, OSError) as err:
        raise ValueError(f"{what} {str(path)!r} is not a complete torch archive ({err})") from None
    if damaged is not None:
        raise ValueError(f"{what} {str(path)!r} is damaged: entry {damaged!r} does not match its checksum")
