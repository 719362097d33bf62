"""After `make setup`: the venv holds exactly the lock, no more and no less (pip freeze, line for line).

Run by the venv's own Python: `python deploy/check-lock.py requirements-dev.lock`. A lock line whose
environment marker does not hold here (colorama on Windows) is not expected.
"""

from __future__ import annotations

import re
import subprocess
import sys

from packaging.markers import Marker
from packaging.utils import canonicalize_name

LINE = re.compile(r"^([A-Za-z0-9_.-]+)==([^ ;\\]+)\s*(?:;\s*([^\\]+?))?\s*\\?$")


def locked(path: str) -> set[str]:
    wanted = set()
    with open(path) as f:
        for line in f:
            m = LINE.match(line.strip())
            if m and (m[3] is None or Marker(m[3]).evaluate()):
                wanted.add(f"{canonicalize_name(m[1])}=={m[2]}")
    return wanted


def frozen() -> set[str]:
    out = subprocess.run(
        [sys.executable, "-m", "pip", "freeze", "--exclude-editable"], capture_output=True, text=True, check=True
    ).stdout
    return {f"{canonicalize_name(n)}=={v}" for n, _, v in (line.partition("==") for line in out.split()) if v}


def main() -> int:
    want, have = locked(sys.argv[1]), frozen()
    if want == have:
        print(f"the venv matches {sys.argv[1]}: {len(have)} packages")
        return 0
    for extra in sorted(have - want):
        print(f"installed but not in {sys.argv[1]}: {extra}", file=sys.stderr)
    for missing in sorted(want - have):
        print(f"in {sys.argv[1]} but not installed: {missing}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
