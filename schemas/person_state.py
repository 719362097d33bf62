"""A person's state in a user feed (``state = "userState"`` in the mapping): which values keep or
make a person active, which deactivate them. Compared case-insensitively, after trimming."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

DEFAULT_ACTIVE = ["ACTIVE"]
DEFAULT_INACTIVE = ["DELETED", "SUSPENDED", "INACTIVE"]


class StateValues(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    active: list[str] = Field(default_factory=lambda: list(DEFAULT_ACTIVE), min_length=1)
    inactive: list[str] = Field(default_factory=lambda: list(DEFAULT_INACTIVE), min_length=1)

    @model_validator(mode="after")
    def _apart(self) -> StateValues:
        both = {v.strip().lower() for v in self.active} & {v.strip().lower() for v in self.inactive}
        if both:
            raise ValueError(f"{sorted(both)[0]!r} is both an active and an inactive state value; keep it in one list")
        if any(not v.strip() for v in self.active + self.inactive):
            raise ValueError("a state value is empty: an empty state cell already means 'no change'")
        return self

    def keys(self) -> tuple[list[str], list[str]]:
        """The values as compared: (active, inactive), trimmed and lower-case."""
        return [v.strip().lower() for v in self.active], [v.strip().lower() for v in self.inactive]

    def described(self) -> str:
        return f"active: {', '.join(self.active)}; inactive: {', '.join(self.inactive)}"
