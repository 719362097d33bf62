"""Warnings from libraries we depend on that we cannot fix, silenced narrowly for every process.

A user of ``feedsync --help`` or a worker's log should never see another project's deprecation
notice. Each filter names the warning's message and the module it is attributed to, so the same
warning raised by our own code still shows. pytest's configuration (``pyproject.toml``) carries the
same filters, since pytest resets the filters around each test; remove both when the pin moves past
the upstream fix.
"""

from __future__ import annotations

import warnings

# (message regex, module regex, why)
KNOWN: tuple[tuple[str, str, str], ...] = (
    (
        "DSA is deprecated",
        r"asyncssh\.",
        # cryptography 51 deprecates DSA; asyncssh 2.24.1 reads dsa.* in annotations at import time
        # (no upstream fix yet). feedsync refuses ssh-dss keys anyway.
        "cryptography>=51 with asyncssh<=2.24.1",
    ),
)


def silence_known() -> None:
    """Install the filters; idempotent (``warnings.filterwarnings`` drops an identical entry first)."""
    for message, module, _why in KNOWN:
        # CryptographyDeprecationWarning is a UserWarning; naming the base keeps cryptography unimported here.
        warnings.filterwarnings("ignore", message=message, category=UserWarning, module=module)
