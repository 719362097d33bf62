"""The config of kind ``hierarchy``: org.csv (units), pos.csv (positions) and user.csv (people) as
one bundle, each file with its own mapping.

```toml
[[connections]]
name = "hr"
kind = "hierarchy"
parts = ["org", "pos", "user"]   # ["user"] syncs people only and leaves units and positions untouched
[connections.files.org.mapping]
key = "Id"
name = "Name"
```

With ``source = "workday"`` and a ``[connections.workday]`` table the fetch stage pulls the bundle
from Workday instead (workers/sources/workday_bundle.py): the org mapping's values are paths into
Get_Organizations' ``Organization_Data``, the pos and user mappings' paths into Get_Workers'
``Worker_Data``; the run goes on as for dropped files.

``[connections.filters]`` (schemas/filters.py) decides who of the user file is imported, on the user
mapping's attributes (``under_managers`` names managers by e-mail; the tree is the file's manager
ids); units and positions are never filtered.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, model_validator

from schemas.config_base import PeopleConnection
from schemas.config_parts import ATTRIBUTE_NAME, FileOptions, KeyProblem
from schemas.filters import FilterConfig
from schemas.kinds.users import DONT_IMPORT
from schemas.workday import WorkdayConfig

#: The parts of a hierarchy bundle in the order they are applied, with their default file names
#: and the attributes each file's mapping must name.
BUNDLE_PARTS = {"org": "org.csv", "pos": "pos.csv", "user": "user.csv"}
BUNDLE_REQUIRED = {"org": ("key", "name"), "pos": ("key", "name"), "user": ("key", "email")}
#: Attributes with a meaning of their own in each part; any other is kept in ``attributes``.
BUNDLE_CORE = {
    "org": ("key", "name", "parent"),
    "pos": ("key", "name", "parent"),
    "user": ("key", "email", "first_name", "last_name", "unit", "position", "manager"),
}


class HierarchyConnection(PeopleConnection):
    OWN_KEYS: ClassVar[tuple[str, ...]] = (
        *PeopleConnection.OWN_KEYS,
        "files",
        "parts",
        "source",
        "workday",
        "filters",
    )
    REFUSED: ClassVar[dict[str, str]] = {
        "mapping": "a hierarchy connection maps each file under [connections.files.<part>.mapping]"
    }
    DEFAULT_PATH: ClassVar[str] = "import/hierarchy/*.csv"

    kind: Literal["hierarchy"]
    files: dict[str, FileOptions] = Field(default_factory=dict)
    parts: list[str] = Field(default_factory=lambda: list(BUNDLE_PARTS))
    # Where the bundle comes from: files dropped in ``path`` (the default), or Workday (organisations
    # by Get_Organizations, positions and people by Get_Workers), reached as ``workday`` says.
    source: Literal["files", "workday"] = "files"
    workday: WorkdayConfig | None = None
    # Who of the user file is imported (schemas/filters.py); None: everyone.
    filters: FilterConfig | None = None

    @model_validator(mode="after")
    def _bundle_rules(self) -> HierarchyConnection:
        unknown = [p for p in self.parts if p not in BUNDLE_PARTS]
        if unknown or not self.parts:
            raise KeyProblem(f'parts must be some of {list(BUNDLE_PARTS)} (e.g. ["user"] to sync users only)', "parts")
        for part in self.parts:
            options = self.files.get(part)
            if options is None:
                raise KeyProblem(f"part {part!r} needs [connections.files.{part}.mapping]", "files", part)
            if not options.name:
                options.name = BUNDLE_PARTS[part]
            for attribute in BUNDLE_REQUIRED[part]:
                if options.mapping.get(attribute, DONT_IMPORT) == DONT_IMPORT:
                    raise KeyProblem(
                        f"the {part} file's mapping must name the column for {attribute!r}", "files", part, attribute
                    )
            for attribute in options.mapping:
                if not ATTRIBUTE_NAME.match(attribute):
                    raise KeyProblem(f"attribute name {attribute!r} must be lower case letters, digits and _", "files")
        extra = [p for p in self.files if p not in self.parts]
        if extra:
            raise KeyProblem(f"files.{extra[0]} is declared but {extra[0]!r} is not in parts", "files", extra[0])
        self._workday_rules()
        self._filter_rules()
        return self

    def _filter_rules(self) -> None:
        if self.filters is None:
            return
        if "user" not in self.parts:
            raise KeyProblem('filters choose who of the user file is imported: add "user" to parts', "filters")
        mapped = {a for a, c in self.files["user"].mapping.items() if c != DONT_IMPORT}
        # A hierarchy person has no state column: "state" is an attribute like any other here.
        for key, why in self.filters.problems(mapped, state_apart=False):
            raise KeyProblem(why, "filters", key)

    def _workday_rules(self) -> None:
        if self.source == "files":
            if self.workday is not None:
                raise KeyProblem("[connections.workday] is only read with source = 'workday'", "workday")
            return
        if self.workday is None:
            raise KeyProblem(
                "source 'workday' needs a [connections.workday] table (base_url, tenant, username and password_env "
                "at least)",
                "source",
            )
        if not self.workday.exclude_inactive_workers:
            raise KeyProblem(
                "exclude_inactive_workers = false does not apply to kind hierarchy: its people have no state, so "
                "terminated workers are left out of the pull (and a full feed deactivates them)",
                "workday",
                "exclude_inactive_workers",
            )
        if self.workday.incremental or self.workday.report_url is not None:
            key = "incremental" if self.workday.incremental else "report_url"
            raise KeyProblem(
                f"{key} does not apply to kind hierarchy: each run pulls the whole bundle (organisations and "
                "workers) from Get_Organizations and Get_Workers",
                "workday",
                key,
            )

    @property
    def fetched(self) -> bool:
        """Whether runs of this connection pull their bundle from Workday (the fetch stage) rather than files."""
        return self.source != "files"

    def expected_files(self) -> dict[str, str]:
        """part -> file name, for the parts the connection syncs, in the order they are applied."""
        return {p: self.files[p].name for p in BUNDLE_PARTS if p in self.parts}
