"""Builders for the content kinds' tests: the HMM course metadata and progress files and the
getAbstract report workbook, with the connections that read them."""

from __future__ import annotations

from pathlib import Path

from openpyxl import Workbook

from producers.commands import apply_connections
from schemas.connections import load_connections_toml
from tests.stubpipeline import HEADER, Pipeline

HMM_TOML = """
[[connections]]
name = "hmm"
kind = "hmm"
trigger = "on_schedule"
{extra}
"""


META_HEADER = (
    "Product ID,Asset Type,Asset Format,Title,Description,URL,Image URL,Authors,Duration,Language,"
    "Publication Date,Copyright Holder,Subject Tags,Status,Collection,Major Discipline,Parent Product ID,"
    "Last Modified Date,Skills\n"
)


PROGRESS_HEADER = (
    "Username,Topic Code,Completion Date,Topic Title,First Accessed Date,Last Accessed Date,Assessment Date,"
    "Assessment Score,Total Time in Topic,Number of Visits,First Name,Last Name,Email Address\n"
)


def course(pid: str, title: str, status: str = "Active", tags: str = "Teams; Leading", skills: str = "Coaching") -> str:
    return (
        f'{pid},Course,HTML,{title},"About {title}, briefly",https://x.test/{pid},https://x.test/{pid}.png,'
        f"HBP,45,English,9/14/2014,HBP,{tags},{status},HMM,Strategy,,5/2/2024,{skills}\n"
    )


def progress(user: str, code: str, completed: str = "", first: str = "", last: str = "", visits: str = "") -> str:
    return f"{user},{code},{completed},Some Title,{first},{last},,,{'10' if first else ''},{visits},U,L,{user}\n"


def setup(pipeline: Pipeline, extra: str = "") -> None:
    apply_connections(load_connections_toml(HMM_TOML.format(extra=extra)))
    pipeline.import_files(("import/user/internal/people.csv", HEADER + "ann@x.com,Ann,A,,S\nbob@x.com,Bob,B,,S\n"))


TOML = """
[[connections]]
name = "ga"
kind = "getabstract"
trigger = "on_schedule"
"""


COLUMNS = ["customerId", "externalId", "email", "firstName", "lastName", "dataId", "language", "downloadDate",
           "downloadTime", "mainTitle", "primaryCategory", "mediaType", "downloadType"]  # fmt: skip


def report(path: Path, rows: list[tuple[str, int, object, str]]) -> bytes:
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.append(COLUMNS)
    for email, data_id, day, title in rows:
        ws.append([1, email, email, "F", "L", data_id, "en", day, 0.5, title, "Sales", "Audio", "PULL"])
    wb.save(path)
    return path.read_bytes()
