"""The optional parts of feedsync, pyproject's extras, and what to say when one is missing.

    console ... starlette, jinja2, uvicorn, python-multipart, argon2-cffi: `feedsync web`, `feedsync admins`
    sftp ...... asyncssh: the SFTP pull and an export pushed over SFTP
    arrow ..... pyarrow: users and xapi blocks validated in the worker (else the SQL transform does it)
    s3 ........ boto3: the file store in S3-compatible object storage (FEEDSYNC_STORE_URL)

Each is imported inside the function that uses it, so a worker that has no use for one never loads
it (tests/unit/test_extras.py). Where it is used and not installed, ``needs`` turns the import error
into one sentence that says which extra to install.
"""

from __future__ import annotations

import contextlib
import importlib.util
from collections.abc import Iterator

from workers.errors import TerminalError

#: Extra -> the top-level modules it brings (the import names, not the distribution names).
EXTRAS: dict[str, tuple[str, ...]] = {
    "console": ("starlette", "jinja2", "uvicorn", "python_multipart", "argon2"),
    "sftp": ("asyncssh",),
    "arrow": ("pyarrow",),
    "s3": ("boto3", "botocore"),
}


class MissingExtra(TerminalError):
    """A part of feedsync that is not installed here was asked for: installing it is the fix."""

    def __init__(self, extra: str, what: str) -> None:
        self.extra = extra
        super().__init__(
            f"{what} needs feedsync's [{extra}] extra, which is not installed here: "
            f"install it (pip install 'feedsync[{extra}]', or 'feedsync[all]') where feedsync runs"
        )


def installed(extra: str) -> bool:
    """Whether every module of ``extra`` can be imported, without importing any of them."""
    return all(importlib.util.find_spec(m) is not None for m in EXTRAS[extra])


@contextlib.contextmanager
def needs(extra: str, what: str) -> Iterator[None]:
    """Around the lazy import of ``extra``'s modules: a missing one becomes ``MissingExtra``; any other
    failed import (a bug of ours, a broken install of another package) is raised as it is."""
    try:
        yield
    except ModuleNotFoundError as exc:
        if (exc.name or "").partition(".")[0] not in EXTRAS[extra]:
            raise
        raise MissingExtra(extra, what) from None
