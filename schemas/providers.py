"""The feed files of content providers, as the providers write them: which file names a kind takes,
and the columns of each file. A connection's ``mapping`` may rename a column (attribute = "Column")
when a provider's export differs; the attribute names are the contract the connectors read.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal


@dataclass(frozen=True)
class FileSpec:
    """How one feed file of a connection is read: its role in the kind, its format and columns."""

    role: str
    format: Literal["csv", "xlsx"]
    columns: dict[str, str]  # attribute -> column header
    required: frozenset[str] = field(default_factory=frozenset)  # attributes whose column must be present
    dates: frozenset[str] = field(default_factory=frozenset)  # spreadsheet serial numbers read as dates
    encoding: str | None = None  # overrides the connection's, for a file of its own
    delimiter: str | None = None

    @property
    def optional(self) -> frozenset[str]:
        return frozenset(self.columns) - self.required


class FileNameProblem(ValueError):
    """A file whose name does not say what it is; ``str()`` tells the admin what to rename it to."""


HMM_METADATA_NAME = "hmm12_metadata.csv"
HMM_PROGRESS_NAME = re.compile(r"^client_hmm12_(\d+)\.csv$")

HMM_METADATA_COLUMNS = {
    "product_id": "Product ID",
    "asset_type": "Asset Type",
    "asset_format": "Asset Format",
    "title": "Title",
    "description": "Description",
    "url": "URL",
    "image_url": "Image URL",
    "authors": "Authors",
    "duration": "Duration",
    "language": "Language",
    "published": "Publication Date",
    "copyright": "Copyright Holder",
    "tags": "Subject Tags",
    "status": "Status",
    "collection": "Collection",
    "discipline": "Major Discipline",
    "parent_id": "Parent Product ID",
    "modified": "Last Modified Date",
    "skills": "Skills",
}
HMM_METADATA_REQUIRED = frozenset({"product_id", "title", "status"})

HMM_PROGRESS_COLUMNS = {
    "username": "Username",
    "topic_code": "Topic Code",
    "completed": "Completion Date",
    "topic_title": "Topic Title",
    "first_accessed": "First Accessed Date",
    "last_accessed": "Last Accessed Date",
    "assessed": "Assessment Date",
    "score": "Assessment Score",
    "time_spent": "Total Time in Topic",
    "visits": "Number of Visits",
    "first_name": "First Name",
    "last_name": "Last Name",
    "email": "Email Address",
}
HMM_PROGRESS_REQUIRED = frozenset({"username", "topic_code"})

GETABSTRACT_NAME = re.compile(r"^report_export_(\d{4})_(\d{2})_(\d{2})(?:_(\d{6}))?\.xlsx$")

GETABSTRACT_COLUMNS = {
    "customer_id": "customerId",
    "external_id": "externalId",
    "email": "email",
    "first_name": "firstName",
    "last_name": "lastName",
    "data_id": "dataId",
    "language": "language",
    "download_date": "downloadDate",
    "download_time": "downloadTime",
    "main_title": "mainTitle",
    "category": "primaryCategory",
    "media_type": "mediaType",
    "download_type": "downloadType",
}
GETABSTRACT_REQUIRED = frozenset({"email", "data_id", "download_date", "main_title"})

#: Every attribute a kind's files have, for checking a connection's mapping overrides.
ATTRIBUTES = {
    "hmm": set(HMM_METADATA_COLUMNS) | set(HMM_PROGRESS_COLUMNS),
    "getabstract": set(GETABSTRACT_COLUMNS),
}


def _columns(defaults: dict[str, str], overrides: dict[str, str]) -> dict[str, str]:
    return {a: overrides.get(a, c) for a, c in defaults.items()}


def hmm_file(name: str, overrides: dict[str, str]) -> FileSpec:
    if name == HMM_METADATA_NAME:
        return FileSpec("metadata", "csv", _columns(HMM_METADATA_COLUMNS, overrides), HMM_METADATA_REQUIRED)
    m = HMM_PROGRESS_NAME.match(name)
    if m is None:
        raise FileNameProblem(
            f"{name!r} is not a Harvard ManageMentor feed name; name the course metadata "
            f"{HMM_METADATA_NAME!r} and the user feed 'client_hmm12_yyyyMMdd.csv' (e.g. client_hmm12_20170304.csv)"
        )
    # The date orders the feeds (sync.feed_files.file_date); here it only has to be a real one.
    if len(m.group(1)) != 8 or not _is_date(m.group(1), "%Y%m%d"):
        raise FileNameProblem(
            f"the date {m.group(1)!r} in {name!r} is not a date in yyyyMMdd form; rename the file with the day the "
            "feed was exported, e.g. client_hmm12_20170304.csv"
        )
    return FileSpec("progress", "csv", _columns(HMM_PROGRESS_COLUMNS, overrides), HMM_PROGRESS_REQUIRED)


def getabstract_file(name: str, overrides: dict[str, str]) -> FileSpec:
    m = GETABSTRACT_NAME.match(name)
    if m is None:
        raise FileNameProblem(
            f"{name!r} is not a getAbstract report name; name it report_export_yyyy_MM_dd.xlsx or "
            "report_export_yyyy_MM_dd_HHmmss.xlsx (e.g. report_export_2017_04_01_175342.xlsx)"
        )
    stamp = "".join(g for g in m.groups() if g)
    if not _is_date(stamp, "%Y%m%d%H%M%S" if m.group(4) else "%Y%m%d"):
        raise FileNameProblem(
            f"the date in {name!r} is not a valid date and time (yyyy_MM_dd_HHmmss); rename the file with the "
            "moment the report was exported"
        )
    columns = _columns(GETABSTRACT_COLUMNS, overrides)
    return FileSpec("usage", "xlsx", columns, GETABSTRACT_REQUIRED, dates=frozenset({"download_date"}))


def _is_date(text: str, fmt: str) -> bool:
    try:
        datetime.strptime(text, fmt)
    except ValueError:
        return False
    return True
