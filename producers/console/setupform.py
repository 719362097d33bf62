"""The "New connection" pages' logic: a template CSV read as the worker reads a feed, each column's
sample values, the connection entry built from the mapping form (refusing a literal secret), and a
dry-run preview of the template's first rows through the mapping, which writes nothing.

The entry is validated by ``schemas.connections.validate_entry``, the check ``connections apply``
runs on each ``[[connections]]`` of a file; its problems are shown beside the field they are about.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from schemas.connections import EntryProblem, validate_entry
from schemas.kinds import KindConfig, config_class
from schemas.kinds.users import DONT_IMPORT, USER_CORE_ATTRIBUTES, UsersConnection
from schemas.providers import FileNameProblem
from schemas.settings import get_settings
from workers import connectors
from workers.connectors.contract import ExportKind, ImportKind
from workers.connectors.users.transform import EMAIL_RE
from workers.errors import BadFileError
from workers.files.feedreader import FeedReader, RowError
from workers.files.xlsxreader import XlsxReader

#: The kinds set up from a template CSV with one mapping (column -> attribute), and what each
#: platform attribute is, in the words of the mapping page.
KINDS: dict[str, dict[str, str]] = {
    "users": {
        "email": "E-mail (the key people are matched on)",
        "first_name": "First name",
        "last_name": "Last name",
        "manager": "Manager's e-mail",
        "state": "State (active or gone)",
    }
}
assert set(KINDS["users"]) == set(USER_CORE_ATTRIBUTES)
#: The kinds whose columns their provider fixes: the template (a file the provider sent, named as
#: it names them) is checked against the kind's expected header; there is nothing to map.
FIXED: dict[str, str] = {
    "hmm": "Harvard ManageMentor's files: upload hmm12_metadata.csv or a client_hmm12_<date>.csv",
    "getabstract": "getAbstract's report: upload a report_export_<date>.xlsx",
}


def offered() -> list[str]:
    """The kinds the New connection page sets up: with a mapping, then with fixed columns."""
    return [*KINDS, *FIXED]


def exports() -> dict[str, str]:
    """The export kinds, set up with no template (the folder or SFTP server the file goes to, and
    when), each with what its file holds (the kind declares it)."""
    return {k.NAME: k.TITLE for k in connectors.kinds() if isinstance(k, ExportKind)}


def in_file() -> dict[str, str]:
    """The import kinds set up in a connections file (``feedsync connections apply``), not here:
    every registered one the page does not offer, with the README section that says how (the
    kind declares it)."""
    return {
        k.NAME: k.README_SECTION
        for k in connectors.kinds()
        if isinstance(k, ImportKind) and k.NAME not in KINDS and k.NAME not in FIXED
    }


def check_fixed(kind: str, path: Path, label: str, encoding: str = "utf-8", delimiter: str = ",") -> str | None:
    """A fixed kind's template read as the worker reads the provider's file: None when its header
    has every column the kind needs, else what is wrong (naming the file and line 1)."""
    config, problems = validate_entry({"name": "template", "kind": kind})
    assert config is not None, problems
    try:
        spec = connectors.import_kind(kind).file_spec(config, label)
    except FileNameProblem as exc:
        return f"{label}: {exc}"
    try:
        if spec.format == "xlsx":
            if path.suffix != ".xlsx":  # openpyxl reads a workbook by its name's suffix
                book = path.with_suffix(".xlsx")
                if not book.exists():
                    os.link(path, book)
                path = book
            xlsx = XlsxReader(path, label, get_settings())
            try:
                xlsx.header(spec.columns, spec.optional)
            finally:
                xlsx.close()
        else:
            FeedReader(path, label, encoding=encoding, delimiter=delimiter).header(spec.columns, spec.optional)
    except BadFileError as exc:
        return str(exc)
    return None


#: Template rows read for the sample values and the preview.
SAMPLE_ROWS = 20
PREVIEW_ROWS = 10
#: The select's value for a column that is not imported, and the prefix of a profile attribute.
SKIP = ""
PROFILE = "profile:"
#: An environment variable's name as the console takes it: upper case, digits and _.
ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]{0,127}$")
_SLUG = re.compile(r"[^a-z0-9]+")


def required_of(kind: str) -> list[str]:
    cls = config_class(kind)
    if cls is None or "required" not in cls.model_fields:
        return []
    return list(cls.model_fields["required"].get_default(call_default_factory=True))


def default_path(kind: str) -> str:
    cls = config_class(kind)
    return str(getattr(cls, "DEFAULT_PATH", ""))


def slug(column: str) -> str:
    """A column's name as a profile attribute's (``Cost Center`` -> ``cost_center``)."""
    s = _SLUG.sub("_", column.lower()).strip("_")
    return (s if s and s[0].isalpha() else f"c_{s}")[:63] or "column"


#: Words in a column's name that say which attribute it holds, tried in order.
_HINTS = (
    (("manager",), "manager"),
    (("mail",), "email"),
    (("first", "given", "forename"), "first_name"),
    (("last", "surname", "family"), "last_name"),
    (("state", "status", "active"), "state"),
)


def guess(kind: str, column: str) -> str:
    """The attribute a column most likely holds, or SKIP."""
    s = slug(column)
    core = KINDS.get(kind, {})
    if s in core:
        return s
    return next((a for words, a in _HINTS if a in core and any(w in s for w in words)), SKIP)


@dataclass
class Template:
    """A template CSV as the worker reads feeds: its columns and a few values of each."""

    columns: list[str]
    samples: dict[str, list[str]]
    problem: str | None = None


def read_template(path: Path, label: str, encoding: str = "utf-8", delimiter: str = ",") -> Template:
    reader = FeedReader(path, label, encoding=encoding, delimiter=delimiter)
    try:
        header = reader.header({})
    except BadFileError as exc:
        return Template([], {}, str(exc))
    samples: dict[str, list[str]] = {c: [] for c in header.columns}
    for n, record in enumerate(reader.records(header)):
        if n >= SAMPLE_ROWS:
            break
        if isinstance(record, RowError):
            continue
        for column, value in zip(header.columns, record[1], strict=True):
            if value.strip() and value not in samples[column] and len(samples[column]) < 3:
                samples[column].append(value)
    return Template(header.columns, samples)


@dataclass
class Setup:
    """What the mapping form says: the entry for the connections file, and the problems by field."""

    entry: dict[str, Any]
    problems: dict[str, list[str]] = field(default_factory=dict)
    config: KindConfig | None = None

    def add(self, where: str, message: str) -> None:
        self.problems.setdefault(where, []).append(message)


def _threshold(value: str) -> int | str:
    return int(value) if value.isdigit() else value


def _schedule(form: Any, setup: Setup) -> dict[str, Any] | None:
    if form.get("schedule_enabled") != "on":
        return None
    unit = str(form.get("every_unit") or "days")
    try:
        start = datetime.fromisoformat(f"{form.get('start_date', '')}T{form.get('start_time') or '00:00'}:00")
        every = int(str(form.get("every", "")))
    except ValueError:
        setup.add("schedule", "give the start as a date and a time (UTC) and repeat every N as a whole number")
        return None
    schedule: dict[str, Any] = {
        "start": start.replace(tzinfo=UTC),
        f"every_{'hours' if unit == 'hours' else 'days'}": every,
    }
    if form.get("access") == "exclusive":
        schedule["access"] = "exclusive"
    return schedule


def _sftp(form: Any, setup: Setup) -> dict[str, Any] | None:
    if not str(form.get("sftp_host", "")).strip():
        return None
    sftp: dict[str, Any] = {"host": str(form["sftp_host"]).strip(), "user": str(form.get("sftp_user", "")).strip()}
    sftp["host_key"] = str(form.get("sftp_host_key", "")).strip()
    if str(form.get("sftp_port", "")).strip() not in ("", "22"):
        port = str(form["sftp_port"]).strip()
        sftp["port"] = int(port) if port.isdigit() else port
    if str(form.get("sftp_remote_dir", "")).strip():
        sftp["remote_dir"] = str(form["sftp_remote_dir"]).strip()
    key_file = str(form.get("sftp_key_file", "")).strip()
    if key_file.startswith("-----BEGIN") or "PRIVATE KEY" in key_file:
        setup.add(
            "sftp.key_file", "key_file names the key's file, never the key itself: `feedsync sftp keygen` makes one"
        )
    elif key_file:
        sftp["key_file"] = key_file
    password_env = str(form.get("sftp_password_env", "")).strip()
    if password_env and not ENV_NAME.match(password_env):
        # Never echoed: it may be the password itself.
        setup.add(
            "sftp.password_env",
            "this does not look like an environment variable's name: give the name of the variable that holds "
            "the password (upper case letters, digits and _, e.g. HR_SFTP_PASSWORD), never the password",
        )
    elif password_env:
        sftp["password_env"] = password_env
    return sftp


def entry_of(kind: str, columns: list[str], form: Any) -> Setup:
    """The ``[[connections]]`` entry the form describes, validated as ``connections apply`` does."""
    mapping: dict[str, str] = {}
    setup = Setup({"name": str(form.get("name", "")).strip(), "kind": kind})
    for i, column in enumerate(columns):
        choice = str(form.get(f"col{i}", SKIP))
        attribute = slug(column) if choice == PROFILE else choice
        if attribute == SKIP:
            continue
        if attribute in mapping:
            setup.add(
                f"mapping.{attribute}", f"{attribute} is chosen for two columns, {mapping[attribute]!r} and {column!r}"
            )
        mapping[attribute] = column
    path = str(form.get("path", "")).strip()
    if path and path != default_path(kind):
        setup.entry["path"] = path
    if form.get("trigger") == "on_schedule":
        setup.entry["trigger"] = "on_schedule"
    if kind in KINDS:  # people: thresholds and the mapping; a fixed kind has neither
        if form.get("full_feed") == "on":
            setup.entry["full_feed"] = True
        for key in ("max_deactivate", "max_change", "max_create"):
            value = str(form.get(key, "")).strip()
            if value:
                setup.entry[key] = _threshold(value)
        setup.entry["mapping"] = mapping
    return _finish(setup, form)


def export_entry(kind: str, form: Any) -> Setup:
    """An export's ``[[connections]]`` entry from its form (destination and schedule), validated as
    ``connections apply`` validates it."""
    setup = Setup({"name": str(form.get("name", "")).strip(), "kind": kind})
    location = str(form.get("location", "")).strip()
    if location:
        setup.entry["location"] = location
    timezone = str(form.get("timezone", "")).strip()
    if timezone and timezone != "UTC":
        setup.entry["timezone"] = timezone
    if form.get("line_ends") == "crlf":
        setup.entry["line_ends"] = "crlf"
    if form.get("zip") == "on":
        setup.entry["zip"] = True
    return _finish(setup, form)


def _finish(setup: Setup, form: Any) -> Setup:
    """What every kind's form ends with: its schedule and SFTP parts, then the entry validated as
    ``connections apply`` validates it."""
    if (schedule := _schedule(form, setup)) is not None:
        setup.entry["schedule"] = schedule
    if (sftp := _sftp(form, setup)) is not None:
        setup.entry["sftp"] = sftp
    config, problems = validate_entry(setup.entry)
    for p in problems:
        setup.add(_where(p), p.message)
    setup.config = config if not setup.problems else None
    return setup


def _where(p: EntryProblem) -> str:
    """The field a problem is shown beside: ``mapping.email``, ``sftp.host``, ``schedule``, ``max_deactivate``."""
    if not p.loc:
        return "connection"
    if p.loc[0] in ("mapping", "sftp") and len(p.loc) > 1:
        return f"{p.loc[0]}.{p.loc[1]}"
    return p.loc[0]


@dataclass
class Preview:
    """The template's first rows through the mapping: what each would become, and each row's problems."""

    attributes: list[str]
    rows: list[tuple[int, list[str], list[str]]]  # line, values by attribute, problems
    problem: str | None = None


def preview(config: KindConfig, path: Path, label: str) -> Preview:
    """A dry run of the template's first rows: read and mapped as the worker does; nothing written."""
    assert isinstance(config, UsersConnection)
    mapping = config.imported_mapping
    reader = FeedReader(path, label, encoding=config.encoding, delimiter=config.delimiter)
    try:
        header = reader.header(mapping)
    except BadFileError as exc:
        return Preview([], [], str(exc))
    attributes = list(mapping)
    rows: list[tuple[int, list[str], list[str]]] = []
    for record in reader.records(header):
        if len(rows) >= PREVIEW_ROWS:
            break
        if isinstance(record, RowError):
            where = f"column {record.column_no}: " if record.column_no else ""
            rows.append((record.line, [], [f"{where}{record.message}"]))
            continue
        line, cells = record
        values = [cells[header.positions[a]].strip() for a in attributes]
        rows.append((line, values, _row_problems(config, dict(zip(attributes, values, strict=True)), mapping)))
    return Preview(attributes, rows)


def _row_problems(config: UsersConnection, values: dict[str, str], mapping: dict[str, str]) -> list[str]:
    problems = [f"{mapping[a]!r} ({a}) is empty: a required attribute" for a in config.required if not values.get(a)]
    for a in ("email", "manager"):
        v = values.get(a, "")
        if v and not re.match(EMAIL_RE, v) and (a == "email" or mapping.get(a) != DONT_IMPORT):
            problems.append(f"{mapping[a]!r} ({a}) is not an e-mail address")
    return problems
