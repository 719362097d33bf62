"""``[connections.filters]``: who of a people feed is imported, decided before the import.

```toml
[connections.filters]
under_managers = ["ceo@example.com"]              # them and everyone below them in the feed's manager tree
exclude_values = { worker_type = ["Contingent"] } # rows whose attribute is one of these are left out
include_values = { country = ["DE", "AT"] }       # only rows whose attribute is one of these
filter_leavers = "report"                         # or "deactivate": see below
```

Values are compared trimmed and case-insensitively with the mapped attribute's value. A filtered
row is counted (``filtered``) and never "gone": a full feed does not deactivate it. A person this
connection imported earlier who is filtered now (a leaver) is reported in the plan; with
``filter_leavers = "deactivate"`` they are deactivated, counted with the run's deactivations (and its
thresholds).

For kind ``users`` and the user file of kind ``hierarchy`` (units and positions are never filtered);
``under_managers`` names managers by e-mail in both, and walks the feed's own manager tree.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from schemas.config_parts import KeyProblem

#: At most this many values per attribute, and managers: a filter is a rule, not a list of people.
MAX_FILTER_VALUES = 1000


class FilterConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    under_managers: list[str] = Field(default_factory=list, max_length=MAX_FILTER_VALUES)
    exclude_values: dict[str, list[str]] = Field(default_factory=dict)
    include_values: dict[str, list[str]] = Field(default_factory=dict)
    filter_leavers: Literal["report", "deactivate"] = "report"

    @field_validator("under_managers")
    @classmethod
    def _managers(cls, v: list[str]) -> list[str]:
        for manager in v:
            if "@" not in manager or manager.strip() != manager:
                raise KeyProblem(
                    "under_managers lists the managers' e-mail addresses (the feed's key), e.g. 'ceo@example.com'",
                    "filters",
                    "under_managers",
                )
        return v

    @field_validator("exclude_values", "include_values")
    @classmethod
    def _values(cls, v: dict[str, list[str]]) -> dict[str, list[str]]:
        for attribute, values in v.items():
            if not values or len(values) > MAX_FILTER_VALUES:
                raise ValueError(f"{attribute!r} needs between 1 and {MAX_FILTER_VALUES} values")
        return v

    def problems(self, mapped: set[str], *, state_apart: bool = True) -> list[tuple[str, str]]:
        """(key, sentence) for attributes the filter names that the mapping does not import;
        ``state_apart``: the mapping's ``state`` is the person's state (users), filtered by state_values."""
        found = []
        offered = ", ".join(sorted(mapped - ({"state"} if state_apart else set())))
        if self.under_managers and "manager" not in mapped:
            found.append(("under_managers", "under_managers needs the manager attribute mapped to a feed column"))
        for key, table in (("exclude_values", self.exclude_values), ("include_values", self.include_values)):
            for attribute in table:
                if attribute == "state" and state_apart:
                    found.append((key, "filter on state with state_values, not with a value filter"))
                elif attribute not in mapped:
                    found.append(
                        (
                            key,
                            f"{key} names {attribute!r}, which the mapping does not import; "
                            f"filter on a mapped attribute ({offered})",
                        )
                    )
        return found

    @property
    def active(self) -> bool:
        return bool(self.under_managers or self.exclude_values or self.include_values)

    def attributes(self) -> list[str]:
        """The attributes the value filters read, in a stable order."""
        return sorted({*self.exclude_values, *self.include_values})
