"""Small file helpers shared by intake, parse, the SFTP pull and export destinations."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

BLOCK = 1 << 20  # bytes read at a time: memory stays one block whatever the file's size


def sha256_fd(fd: int) -> tuple[str, int]:
    """SHA-256 and size of what ``fd`` holds, read with pread (the descriptor's offset is untouched)."""
    h = hashlib.sha256()
    offset = 0
    while block := os.pread(fd, BLOCK, offset):
        h.update(block)
        offset += len(block)
    return h.hexdigest(), offset


def fsync_dir(folder: Path) -> None:
    """Make a rename into ``folder`` durable."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
