"""What the content kinds (``hmm``, ``getabstract``) share: renames of the provider's columns and
learners created from the feed."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field, field_validator, model_validator

from schemas.config_base import Connection
from schemas.config_parts import KeyProblem, check_mapping
from schemas.kinds.users import DONT_IMPORT
from schemas.providers import ATTRIBUTES


class ContentConnection(Connection):
    OWN_KEYS: ClassVar[tuple[str, ...]] = ("create_learners",)
    FAMILY: ClassVar[str | None] = "content connections"

    # Renames of the provider's columns, only where an export differs (schemas/providers.py).
    mapping: dict[str, str] = Field(default_factory=dict)
    # A learner the platform does not know is created from the feed instead of being a row error.
    create_learners: bool = False

    @field_validator("mapping")
    @classmethod
    def _mapping(cls, v: dict[str, str]) -> dict[str, str]:
        return check_mapping(v)

    @model_validator(mode="after")
    def _content_rules(self) -> ContentConnection:
        for attribute in self.mapping:
            if attribute not in ATTRIBUTES[self.kind]:
                known = ", ".join(sorted(ATTRIBUTES[self.kind]))
                raise KeyProblem(
                    f"{attribute!r} is not a column of {self.kind} feeds; rename one of: {known}", "mapping", attribute
                )
        if DONT_IMPORT in self.mapping.values():
            raise KeyProblem(f"{DONT_IMPORT} applies to users connections only", "mapping")
        return self
