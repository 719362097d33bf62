"""One module per connection kind: its staging tables, its per-chunk transform SQL and its merge."""

from __future__ import annotations

from types import ModuleType


def connector_for(kind: str) -> ModuleType:
    if kind == "users":
        from workers.connectors import users

        return users
    raise KeyError(f"no connector for kind {kind!r}")
