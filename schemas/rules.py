"""Auto-assignment rules, declared as code next to the connections:

    [[rules]]
    group = "Sales and below"
    unit = "SALES"            # the unit's id number ...
    descendants = true        # ... and every unit below it
    programs = ["Sales onboarding"]

A rule may name a ``unit`` (with ``descendants``), a ``position``, profile ``attributes`` and a
``manager`` (id number or e-mail; everyone below them, or only their ``direct_reports``); a person
is a member when every criterion holds and they are active.
"""

from __future__ import annotations

import tomllib

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from schemas.connections import ConfigError


class Rule(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    group: str = Field(min_length=1, max_length=200)
    programs: list[str] = Field(default_factory=list)
    unit: str | None = None
    descendants: bool = False
    position: str | None = None
    attributes: dict[str, str] = Field(default_factory=dict)
    manager: str | None = None
    direct_reports: bool = False

    @model_validator(mode="after")
    def _has_a_criterion(self) -> Rule:
        if not (self.unit or self.position or self.attributes or self.manager):
            raise ValueError("a rule needs at least one of unit, position, attributes or manager")
        if self.descendants and not self.unit:
            raise ValueError("descendants applies to a unit: name the unit")
        if self.direct_reports and not self.manager:
            raise ValueError("direct_reports applies to a manager: name the manager")
        return self


def load_rules_toml(text: str, filename: str = "connections.toml") -> list[Rule]:
    """The [[rules]] of a connections file (none is fine)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{filename}: not valid TOML: {exc}") from None
    rules, problems = [], []
    for index, entry in enumerate(data.get("rules", [])):
        try:
            rules.append(Rule.model_validate(entry))
        except ValidationError as exc:
            for err in exc.errors():
                where = ".".join(str(p) for p in err["loc"]) or "rule"
                problems.append(f"{filename}: rules[{index}] {where}: {err['msg'].removeprefix('Value error, ')}")
    groups = [r.group for r in rules]
    problems += [
        f"{filename}: group {g!r} has more than one rule" for g in sorted({g for g in groups if groups.count(g) > 1})
    ]
    if problems:
        raise ConfigError("\n".join(problems))
    return rules
