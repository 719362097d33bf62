"""Pull every page of one API source and write the records as a CSV feed file, or nothing at all.

The file is written beside ``sink`` under a hidden ``.part`` name and moved to ``sink`` only after
the last page: a fetch cut off mid-way (network error, 5xx after its retries, a page that does not
parse, a cap reached) raises FetchError and leaves no file under the final name, so a full feed
never deactivates anyone on the strength of half a directory.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import os
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import structlog

from schemas.api import ApiConfig, ApiSourceName
from schemas.kinds.users import DONT_IMPORT
from schemas.settings import Settings
from schemas.workday import WorkdayConfig, WorkdaySourceName
from workers.http import ApiClient, FetchError
from workers.http.soap import WorkdayClient
from workers.sources import delta, msgraph, salesforce, workday
from workers.sources.ahead import one_ahead
from workers.sources.records import Page, converter

log = structlog.get_logger(__name__)


PAGERS: dict[str, Callable[[ApiClient, tuple[str, ...]], Iterator[Page]]] = {
    "msgraph": msgraph.pages,
    "salesforce": salesforce.pages,
}


@dataclass(frozen=True)
class FetchSpec:
    """What a fetch needs of a connection: its name, its source and api table, and the mapped fields."""

    name: str
    source: ApiSourceName | WorkdaySourceName
    #: [connections.api], or [connections.workday] for the Workday sources.
    api: ApiConfig | WorkdayConfig
    #: The source fields the mapping names, in the order of the file's header.
    fields: tuple[str, ...]
    #: The fields mapped to ``email`` and ``manager`` (Workday resolves managers' ids to e-mails).
    email: str | None = None
    manager: str | None = None
    #: Workday: the moment every page is read as of, and (an incremental pull) the start of the
    #: changes asked for; None: now, and every worker.
    as_of: datetime | None = None
    updated_from: datetime | None = None

    @classmethod
    def from_mapping(
        cls,
        name: str,
        source: ApiSourceName | WorkdaySourceName,
        api: ApiConfig | WorkdayConfig,
        mapping: Mapping[str, str],
    ) -> FetchSpec:
        fields = tuple(dict.fromkeys(v for v in mapping.values() if v != DONT_IMPORT))
        imported = {a: v for a, v in mapping.items() if v != DONT_IMPORT}
        return cls(name, source, api, fields, imported.get("email"), imported.get("manager"))


@dataclass
class Pull:
    """An open connection to a source and the pages it yields; ``requests`` counts what was sent."""

    pages: Iterator[Page]
    client: ApiClient | WorkdayClient

    @property
    def requests(self) -> int:
        return self.client.requests


@contextmanager
def pull(
    spec: FetchSpec, settings: Settings, *, first_page: bool = False, round_: delta.DeltaRound | None = None
) -> Iterator[Pull]:
    """The source's client, open for the pull, and its pages (``first_page``: a preview, which
    needs no more; Workday's pages otherwise all come in before the first is yielded)."""
    if isinstance(spec.api, WorkdayConfig):
        with WorkdayClient(spec.name, spec.api, settings) as wd:
            if spec.source == "workday_raas":
                yield Pull(workday.report(wd), wd)
                return
            found = workday.pages(
                wd,
                spec.fields,
                spec.email,
                spec.manager,
                as_of=spec.as_of,
                updated_from=spec.updated_from,
                first_page=first_page,
            )
            yield Pull(found, wd)
        return
    with ApiClient(spec.name, spec.source, spec.api, settings) as client:
        # With round_, a Graph delta round's pages (workers/sources/delta.py).
        pages = PAGERS[spec.source](client, spec.fields) if round_ is None else delta.pages(client, spec.fields, round_)
        yield Pull(pages, client)


@dataclass(frozen=True)
class FetchResult:
    path: Path
    rows: int
    pages: int
    sha256: str
    duration_s: float
    #: API requests sent (retries and the repeat after a refreshed token included; token requests not).
    requests: int


def fetch(spec: FetchSpec, settings: Settings, sink: Path, round_: delta.DeltaRound | None = None) -> FetchResult:
    """Every page of ``spec``'s source as a CSV file at ``sink`` (header: the mapped fields); with
    ``round_``, a Graph delta round (workers/sources/delta.py), which it fills in as it goes."""
    problems = spec.api.problems_for(spec.source)
    if problems:
        raise FetchError(f"{spec.name}: [connections.api] {problems[0][0]}: {problems[0][1]}")
    if not spec.fields:
        raise FetchError(f"{spec.name}: the mapping names no source field: map at least the key (e.g. email)")
    started = time.monotonic()
    part = sink.with_name(f".{sink.name}.part")
    digest = hashlib.sha256()
    count = pages = 0
    try:
        with pull(spec, settings, round_=round_) as source, part.open("wb") as out:
            buffer = io.StringIO()
            writer = csv.writer(buffer, lineterminator="\n")

            def flush() -> None:
                data = buffer.getvalue().encode("utf-8")
                digest.update(data)
                out.write(data)
                buffer.seek(0)
                buffer.truncate()

            writer.writerow(spec.fields)
            flush()
            row = converter(spec.fields)
            pager = one_ahead(source.pages, limit=spec.api.max_pages)
            with contextlib.closing(pager):
                for page in pager:
                    pages += 1
                    count += len(page.records)
                    if count > spec.api.max_records:
                        raise FetchError(
                            f"{spec.name}: the API holds more than max_records ({spec.api.max_records}) records; the "
                            "fetch stopped and nothing was imported: raise max_records in [connections.api] if that "
                            "many is right"
                        )
                    writer.writerows(map(row, page.records))
                    flush()
                    if page.more and pages >= spec.api.max_pages:
                        raise FetchError(
                            f"{spec.name}: the API has more than max_pages ({spec.api.max_pages}) pages; the "
                            "fetch stopped and nothing was imported: raise max_pages in [connections.api] if that "
                            "many is right"
                        )
            out.flush()
            os.fsync(out.fileno())
            requests = source.requests
        os.replace(part, sink)
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    result = FetchResult(sink, count, pages, digest.hexdigest(), time.monotonic() - started, requests)
    log.info(
        "api fetch done",
        connection=spec.name,
        source=spec.source,
        rows=result.rows,
        pages=result.pages,
        requests=result.requests,
        duration_s=round(result.duration_s, 3),
    )
    return result
