"""The connection config of every kind, one pydantic class per kind, discriminated on ``kind``.

A new kind writes its class in a module of its own (``schemas/kinds/<kind>.py``, built on
``schemas.config_base``) and adds it to ``CONFIGS`` below: the TOML loader, the stored rows and the
workers all find it here. A test registers a kind of its own with ``register``.
"""

from __future__ import annotations

from typing import Any, TypeVar

from schemas.config_base import Connection, KindConfig, PeopleConnection
from schemas.exports import ExportConnection
from schemas.kinds.getabstract import GetabstractConnection
from schemas.kinds.hierarchy import HierarchyConnection
from schemas.kinds.hmm import HmmConnection
from schemas.kinds.linkedin_learning import LinkedInLearningConnection
from schemas.kinds.users import UsersConnection
from schemas.kinds.xapi import XapiConnection

#: One line per kind's class, in the order ``this version supports: …`` lists them.
CONFIGS: tuple[type[KindConfig], ...] = (
    UsersConnection,
    HmmConnection,
    GetabstractConnection,
    HierarchyConnection,
    XapiConnection,
    LinkedInLearningConnection,
    ExportConnection,
)

_BY_KIND: dict[str, type[KindConfig]] = {kind: cls for cls in CONFIGS for kind in cls.kinds()}

C = TypeVar("C", bound=KindConfig)


def register(cls: type[KindConfig]) -> None:
    """Make ``cls`` the config of its kinds in this process (a kind kept outside this package)."""
    for kind in cls.kinds():
        _BY_KIND[kind] = cls


def unregister(cls: type[KindConfig]) -> None:
    for kind in cls.kinds():
        if _BY_KIND.get(kind) is cls:
            del _BY_KIND[kind]


def config_class(kind: object) -> type[KindConfig] | None:
    return _BY_KIND.get(kind) if isinstance(kind, str) else None


def known_kinds() -> list[str]:
    return list(_BY_KIND)


def file_kinds() -> list[str]:
    """The kinds whose connections take files from the drop dir."""
    return [k for k, cls in _BY_KIND.items() if cls.TAKES_FILES]


def owners(key: str) -> list[str]:
    """The kinds that own ``key`` (see KindConfig.OWN_KEYS)."""
    return [k for k, cls in _BY_KIND.items() if key in cls.OWN_KEYS]


def owners_phrase(kinds: list[str]) -> str:
    """``kind users or hierarchy``, or a family's name when the kinds are exactly that family."""
    families = {_BY_KIND[k].FAMILY for k in kinds}
    family = families.pop() if len(families) == 1 else None
    if family is not None and set(kinds) == {k for k, c in _BY_KIND.items() if family == c.FAMILY}:
        return f"{family} ({', '.join(kinds)})"
    return "kind " + " or ".join(kinds)


# Version 1 stored every import kind's config with every import key, those of other kinds at their
# defaults. They are written so still (an unchanged connection applied again stays "unchanged",
# rows stored before read the same) and dropped when read.
_V1_KINDS = frozenset({"users", "hmm", "getabstract", "hierarchy"})
_V1_KEYS: dict[str, Any] = {
    "key": "email",
    "mapping": {},
    "full_feed": False,
    "max_deactivate": None,
    "max_change": None,
    "empty_erases": False,
    "required": ["email"],
    "create_learners": False,
    "files": {},
    "parts": ["org", "pos", "user"],
}


#: Keys added since version 1, stored only when they differ from their default, so a connection
#: that does not use them is stored exactly as before (and applying its file again changes nothing).
_ONLY_WHEN_SET = (
    "sftp",
    "state_values",
    "no_manager_values",
    "max_create",
    "max_reject_share",
    "on_threshold",
    "expect",
    "source",
    "api",
    "filters",
    "workday",
    "timezone",
    "line_ends",
    "unique_ids",
)


def to_json(config: KindConfig) -> dict[str, Any]:
    """The config as ``sync.connections.config`` stores it."""
    data = config.model_dump(mode="json")
    for key in _ONLY_WHEN_SET:
        field = type(config).model_fields.get(key)
        if field is not None and getattr(config, key) == field.get_default(call_default_factory=True):
            data.pop(key, None)
    if config.kind in _V1_KINDS:
        data = {**{k: v for k, v in _V1_KEYS.items() if k not in data}, **data}
    return data


def connection_from_json(data: dict[str, Any]) -> KindConfig:
    """A stored config (``sync.connections.config``, ``sync.runs.config``) as its kind's class."""
    cls = config_class(data.get("kind"))
    if cls is None:
        raise KeyError(f"no config class for kind {data.get('kind')!r}")
    if data["kind"] in _V1_KINDS:
        data = {k: v for k, v in data.items() if k in cls.model_fields or _V1_KEYS.get(k, v) != v}
    return cls.model_validate(data)


def config_as(cls: type[C], config: KindConfig) -> C:
    """``config`` as the class its kind's code needs (a run of another kind here is a bug)."""
    if not isinstance(config, cls):
        raise TypeError(f"a {config.kind} connection is not a {cls.__name__}")
    return config


__all__ = [
    "CONFIGS",
    "Connection",
    "ExportConnection",
    "GetabstractConnection",
    "HierarchyConnection",
    "HmmConnection",
    "KindConfig",
    "LinkedInLearningConnection",
    "PeopleConnection",
    "UsersConnection",
    "XapiConnection",
    "config_as",
    "config_class",
    "connection_from_json",
    "file_kinds",
    "known_kinds",
    "owners",
    "owners_phrase",
    "register",
    "unregister",
]
