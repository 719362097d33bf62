"""The config of kind ``users``: one or more user CSVs, each a feed of people keyed by e-mail.

```toml
[[connections]]
name = "hr-users"
kind = "users"
full_feed = true               # people missing from the feed are deactivated (within max_deactivate)
[connections.mapping]          # attribute = "feed column"
email = "Email"
manager = "Manager Email"
```
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from schemas.api import ApiConfig
from schemas.config_base import PeopleConnection
from schemas.config_parts import KeyProblem, check_mapping
from schemas.filters import FilterConfig
from schemas.person_state import StateValues
from schemas.workday import WORKDAY_SOURCES, WorkdayConfig

DONT_IMPORT = "DontImportFromSource"

#: Attributes with a column of their own in lms.users (``state``: whether the person is active);
#: any other mapped name is a profile attribute.
USER_CORE_ATTRIBUTES = ("email", "first_name", "last_name", "manager", "state")


class UsersConnection(PeopleConnection):
    OWN_KEYS: ClassVar[tuple[str, ...]] = (
        *PeopleConnection.OWN_KEYS,
        "key",
        "required",
        "state_values",
        "no_manager_values",
        "source",
        "api",
        "filters",
        "workday",
    )
    DEFAULT_PATH: ClassVar[str] = "import/user/internal/*.csv"

    kind: Literal["users"]
    key: str = "email"
    mapping: dict[str, str] = Field(default_factory=dict)  # attribute -> feed column (email required)
    required: list[str] = Field(default_factory=lambda: ["email"])
    # The values of the mapped ``state`` column that keep a person active or deactivate them.
    state_values: StateValues = Field(default_factory=StateValues)
    # Manager cells that mean "no manager" (the top of the tree: "ROOT", "Company name"), compared
    # case-insensitively; such a row is imported without a manager and without a warning.
    no_manager_values: list[str] = Field(default_factory=list, max_length=100)
    # Where the people come from: files dropped in ``path`` (the default), or an API the fetch stage
    # pulls each run from (workers/stages/fetch.py), reached as ``api`` says.
    # ``workday`` (SOAP Get_Workers) and ``workday_raas`` (a report) are reached as ``workday`` says.
    source: Literal["files", "msgraph", "salesforce", "workday", "workday_raas"] = "files"
    api: ApiConfig | None = None
    # Who of the feed is imported (schemas/filters.py); None: everyone.
    filters: FilterConfig | None = None
    workday: WorkdayConfig | None = None

    @field_validator("mapping")
    @classmethod
    def _mapping(cls, v: dict[str, str]) -> dict[str, str]:
        return check_mapping(v)

    @model_validator(mode="after")
    def _users_rules(self) -> UsersConnection:
        if self.key != "email":
            raise KeyProblem(f"key {self.key!r} is not supported for kind 'users': use key = \"email\"", "key")
        if self.mapping.get("email", DONT_IMPORT) == DONT_IMPORT:
            raise KeyProblem(
                "mapping must name the feed column for 'email', the key users are matched on", "mapping", "email"
            )
        self._api_rules()
        if self.filters is not None:
            for key, why in self.filters.problems(set(self.imported_mapping)):
                raise KeyProblem(why, "filters", key)
        unmapped = [a for a in self.required if a not in self.imported_mapping]
        if unmapped:
            raise KeyProblem(
                f"required attribute {unmapped[0]!r} is not in the mapping: map it to a feed column", "required"
            )
        return self

    def _api_rules(self) -> None:
        if self.source in WORKDAY_SOURCES or self.workday is not None:
            self._workday_rules()
            return
        if self.source == "files":
            if self.api is not None:
                raise KeyProblem("[connections.api] is only read with source = 'msgraph' or 'salesforce'", "api")
            return
        if self.api is None:
            raise KeyProblem(
                f"source {self.source!r} needs a [connections.api] table (client_id and client_secret_env at least)",
                "source",
            )
        for key, why in self.api.problems_for(self.source):
            raise KeyProblem(why, "api", key)
        if self.api.incremental and self.imported_mapping.get("state") != "accountEnabled":
            # A delta names a removed person by id only: the fetch writes them as accountEnabled = false.
            raise KeyProblem(
                'incremental = true needs state = "accountEnabled" in the mapping: a delta says who left '
                "only by disabling or removing them",
                "api",
                "incremental",
            )

    def _workday_rules(self) -> None:
        if self.source not in WORKDAY_SOURCES:
            raise KeyProblem("[connections.workday] is only read with source = 'workday' or 'workday_raas'", "workday")
        if self.api is not None:
            raise KeyProblem(f"source {self.source!r} reads [connections.workday], not [connections.api]", "api")
        if self.workday is None:
            raise KeyProblem(
                f"source {self.source!r} needs a [connections.workday] table (base_url, tenant, username and "
                "password_env at least)",
                "source",
            )
        for key, why in self.workday.problems_for(self.source):
            raise KeyProblem(why, "workday", key)

    @property
    def fetched(self) -> bool:
        """Whether runs of this connection pull their feed from an API (the fetch stage) rather than files."""
        return self.source != "files"

    @property
    def imported_mapping(self) -> dict[str, str]:
        """attribute -> feed column, leaving out attributes the import must never write."""
        return {a: c for a, c in self.mapping.items() if c != DONT_IMPORT}

    @property
    def deactivates_by_state(self) -> bool:
        return "state" in self.imported_mapping

    @property
    def profile_attributes(self) -> list[str]:
        return [a for a in self.imported_mapping if a not in USER_CORE_ATTRIBUTES]
