"""LinkedIn Learning's API, pulled into one CSV feed file: the catalog, then the learners' activity.

- Token: client credentials at ``https://www.linkedin.com/oauth/v2/accessToken`` (the secret in the
  form body), sent as ``Authorization: Bearer``.
- Catalog: ``GET /v2/learningAssets?q=criteria`` with ``assetFilteringCriteria.assetTypes[i]``,
  ``assetFilteringCriteria.locales[i].language`` / ``.country`` and ``assetFilteringCriteria.keyword``
  from the connection, ``start``/``count`` paging (``count`` at most 100: LinkedIn answers 403 past
  it) until ``start`` reaches ``paging.total``. ``libraries`` keeps only courses classified in one
  of those LIBRARY classifications.
- Activity: ``GET /v2/learningActivityReports?q=criteria`` aggregated by INDIVIDUAL and CONTENT
  over the last ``activity_days`` days (``startedAt``, ``timeOffset``), the same paging.
- A ``429`` is LinkedIn's daily quota (limits reset at 00:00 UTC, with no Retry-After): never
  retried, it ends the fetch with QuotaExhausted and the connection is parked until midnight.

Each record is one row of the file (``record`` = ``course`` or ``activity``); the header names
the attributes the kind maps (workers/connectors/linkedin_learning.py). The file is written whole
or not at all, as every fetch's (workers/sources/pull.py).
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import structlog

from schemas.kinds.linkedin_learning import LINKEDIN_BASE_URL, LINKEDIN_TOKEN_URL, LinkedInLearningConnection
from schemas.settings import Settings
from workers.http import ApiClient, FetchError, Token
from workers.sources.pull import FetchResult
from workers.sources.records import lookup

log = structlog.get_logger(__name__)

SOURCE = "linkedin_learning"
ASSETS = "/v2/learningAssets"
ACTIVITY = "/v2/learningActivityReports"
#: LinkedIn refuses a count over 100 (403).
MAX_COUNT = 100

#: The file's header: the attributes of workers/connectors/linkedin_learning.py, in this order.
COLUMNS = (
    "record",
    "urn",
    "title",
    "description",
    "launch_url",
    "image_url",
    "duration_minutes",
    "locale",
    "asset_type",
    "library",
    "subjects",
    "skills",
    "authors",
    "published",
    "modified",
    "email",
    "content_urn",
    "progress_percent",
    "seconds_viewed",
    "completions",
    "first_engaged",
    "last_engaged",
)


class QuotaExhausted(FetchError):
    """LinkedIn answered 429: the application's daily quota is used up until 00:00 UTC."""

    def __init__(self, describe: str) -> None:
        super().__init__(
            f"{describe} answered HTTP 429: LinkedIn's daily API quota is used up; the connection is parked "
            "until it resets at 00:00 UTC and scheduled runs skip it until then; nothing was imported"
        )
        self.describe = describe


class LinkedInClient(ApiClient):
    """The HTTP layer's client with LinkedIn's defaults, and its 429 that is not to be retried."""

    def __init__(self, name: str, config: LinkedInLearningConnection, settings: Settings) -> None:
        api = config.api
        if api.token_url is None:
            api = api.model_copy(update={"token_url": LINKEDIN_TOKEN_URL})
        super().__init__(name, SOURCE, api, settings)

    def base_url(self) -> str:
        return self.api.base_url or LINKEDIN_BASE_URL

    def _send(self, request: Any, token: Token) -> httpx.Response:
        response = super()._send(request, token)
        if response.status_code == 429:
            raise QuotaExhausted(str(request.describe))
        return response


def catalog_query(config: LinkedInLearningConnection) -> dict[str, str]:
    params = {"q": "criteria"}
    for i, t in enumerate(config.asset_types):
        params[f"assetFilteringCriteria.assetTypes[{i}]"] = t
    for i, (language, country) in enumerate(config.locale_pairs()):
        params[f"assetFilteringCriteria.locales[{i}].language"] = language
        if country is not None:
            params[f"assetFilteringCriteria.locales[{i}].country"] = country
    if config.keywords:
        params["assetFilteringCriteria.keyword"] = config.keywords
    params["assetRetrievalCriteria.expandDepth"] = "1"
    return params


def activity_query(config: LinkedInLearningConnection, now: datetime) -> dict[str, str]:
    start = datetime.combine(now.date() - timedelta(days=config.activity_days), datetime.min.time(), UTC)
    return {
        "q": "criteria",
        "startedAt": str(int(start.timestamp() * 1000)),
        "timeOffset.unit": "DAY",
        "timeOffset.duration": str(config.activity_days),
        "aggregationCriteria.primary": "INDIVIDUAL",
        "aggregationCriteria.secondary": "CONTENT",
        "assetType": "COURSE",
        "contentSource": "ALL_SOURCES",
    }


def pages(client: ApiClient, path: str, params: dict[str, str]) -> Iterator[list[Any]]:
    """Every page's ``elements``, ``start`` advancing by ``count`` until it reaches ``paging.total``."""
    count = min(client.api.page_size, MAX_COUNT)
    start = number = 0
    while True:
        body = client.get_json(path, {**params, "start": str(start), "count": str(count)})
        number += 1
        elements = body.get("elements") if isinstance(body, dict) else None
        paging = body.get("paging") if isinstance(body, dict) else None
        total = paging.get("total") if isinstance(paging, dict) else None
        if not isinstance(elements, list) or not isinstance(total, int):
            raise FetchError(
                f"{client.name}: page {number} of {path} has no 'elements' list or no 'paging.total'; the fetch was "
                "cut off and nothing was imported: check base_url points at LinkedIn's API"
            )
        yield elements
        start += count
        if start >= total:
            return
        if not elements:
            raise FetchError(
                f"{client.name}: page {number} of {path} is empty before paging.total ({total}) was reached; the "
                "fetch was cut off and nothing was imported"
            )
        if number >= client.api.max_pages:
            raise FetchError(
                f"{client.name}: {path} has more than max_pages ({client.api.max_pages}) pages; the fetch stopped "
                "and nothing was imported: raise max_pages in [connections.api] if that many is right"
            )


def first_page(name: str, config: LinkedInLearningConnection, settings: Settings) -> tuple[int, list[dict[str, str]]]:
    """A token and the catalog's first page with the connection's filters (``feedsync api check``):
    how many courses LinkedIn has for them, and the first page's courses as the file would hold them."""
    with LinkedInClient(name, config, settings) as client:
        body = client.get_json(
            ASSETS, {**catalog_query(config), "start": "0", "count": str(min(config.api.page_size, MAX_COUNT))}
        )
    elements, total = lookup(body, "elements"), lookup(body, "paging.total")
    if not isinstance(elements, list) or not isinstance(total, int):
        raise FetchError(f"{name}: {ASSETS} answered no 'elements' list or no 'paging.total': check base_url")
    return total, [course_row(e) for e in elements]


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _day(ms: Any) -> str:
    """An epoch in milliseconds as the day (UTC) it falls on."""
    if isinstance(ms, int | float) and not isinstance(ms, bool):
        return datetime.fromtimestamp(ms / 1000, UTC).date().isoformat()
    return ""


def _minutes(time_to_complete: Any) -> str:
    duration, unit = lookup(time_to_complete, "duration"), lookup(time_to_complete, "unit")
    if not isinstance(duration, int | float) or isinstance(duration, bool):
        return ""
    per = {"SECOND": 1 / 60, "MINUTE": 1, "HOUR": 60, "DAY": 1440}.get(_text(unit))
    return str(round(duration * per)) if per is not None else ""


def _named(classifications: Any, kind: str) -> list[str]:
    if not isinstance(classifications, list):
        return []
    found = []
    for c in classifications:
        inner = lookup(c, "associatedClassification")
        if lookup(inner, "type") == kind and isinstance(name := lookup(inner, "name.value"), str):
            found.append(name.replace(";", ","))
    return found


def course_row(element: Any) -> dict[str, str]:
    """A catalog element as the file's row."""
    details = lookup(element, "details")
    language, country = lookup(element, "title.locale.language"), lookup(element, "title.locale.country")
    locale = f"{language}_{country}" if isinstance(language, str) and isinstance(country, str) else _text(language)
    classifications = lookup(details, "classifications")
    authors = [_text(lookup(c, "name.value")) for c in lookup(details, "contributors") or [] if isinstance(c, dict)]
    return {
        "record": "course",
        "urn": _text(lookup(element, "urn")),
        "title": _text(lookup(element, "title.value")),
        "description": _text(lookup(details, "description.value"))
        or _text(lookup(details, "shortDescription.value"))
        or _text(lookup(details, "descriptionIncludingHtml.value")),
        "launch_url": _text(lookup(details, "urls.webLaunch")),
        "image_url": _text(lookup(details, "images.primary")),
        "duration_minutes": _minutes(lookup(details, "timeToComplete")),
        "locale": locale,
        "asset_type": _text(lookup(element, "type")),
        "library": "; ".join(_named(classifications, "LIBRARY")),
        "subjects": "; ".join(_named(classifications, "SUBJECT")),
        "skills": "; ".join(_named(classifications, "SKILL")),
        "authors": ", ".join(a for a in authors if a),
        "published": _day(lookup(details, "publishedAt")),
        "modified": _day(lookup(details, "lastUpdatedAt")),
    }


def activity_row(element: Any) -> dict[str, str]:
    seconds = completions = 0.0
    progress: float | None = None
    first: list[float] = []
    last: list[float] = []
    for a in lookup(element, "activities") or []:
        kind, value = lookup(a, "engagementType"), lookup(a, "engagementValue")
        if not isinstance(value, int | float) or isinstance(value, bool):
            continue
        if kind == "SECONDS_VIEWED":
            seconds += value
        elif kind == "PROGRESS_PERCENTAGE":
            progress = max(progress or 0.0, float(value))
        elif kind == "COMPLETIONS":
            completions += value
        for at, into in ((lookup(a, "firstEngagedAt"), first), (lookup(a, "lastEngagedAt"), last)):
            if isinstance(at, int | float) and not isinstance(at, bool):
                into.append(at)
    return {
        "record": "activity",
        "email": _text(lookup(element, "learnerDetails.email")),
        "content_urn": _text(lookup(element, "contentDetails.contentUrn")),
        "progress_percent": "" if progress is None else f"{min(progress, 100.0):g}",
        "seconds_viewed": str(round(seconds)),
        "completions": str(round(completions)),
        "first_engaged": _day(min(first)) if first else "",
        "last_engaged": _day(max(last)) if last else "",
    }


def _records(client: ApiClient, config: LinkedInLearningConnection, now: datetime) -> Iterator[list[dict[str, str]]]:
    libraries = {lib.lower() for lib in config.libraries}
    for elements in pages(client, ASSETS, catalog_query(config)):
        rows = [course_row(e) for e in elements]
        # Outside the libraries asked for: left out, so the load retires it like a course gone.
        yield [r for r in rows if not libraries or libraries & {x.strip().lower() for x in r["library"].split(";")}]
    if config.activity_days:
        for elements in pages(client, ACTIVITY, activity_query(config, now)):
            yield [activity_row(e) for e in elements]


def pull(
    name: str,
    config: LinkedInLearningConnection,
    settings: Settings,
    sink: Path,
) -> FetchResult:
    """The catalog and the activity as one CSV at ``sink``, or QuotaExhausted/FetchError and no file."""
    started = time.monotonic()
    part = sink.with_name(f".{sink.name}.part")
    digest = hashlib.sha256()
    count = pages_read = 0
    try:
        with LinkedInClient(name, config, settings) as client, part.open("wb") as out:
            buffer = io.StringIO()
            writer = csv.DictWriter(buffer, COLUMNS, lineterminator="\n")
            writer.writeheader()
            for rows in _records(client, config, datetime.now(UTC)):
                pages_read += 1
                count += len(rows)
                if count > config.api.max_records:
                    raise FetchError(
                        f"{name}: LinkedIn holds more than max_records ({config.api.max_records}) records; the fetch "
                        "stopped and nothing was imported: raise max_records in [connections.api] if that many is right"
                    )
                writer.writerows(rows)
                data = buffer.getvalue().encode("utf-8")
                digest.update(data)
                out.write(data)
                buffer.seek(0)
                buffer.truncate()
            out.flush()
            os.fsync(out.fileno())
            requests = client.requests
        os.replace(part, sink)
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    result = FetchResult(sink, count, pages_read, digest.hexdigest(), time.monotonic() - started, requests)
    log.info("api fetch done", connection=name, source=SOURCE, rows=count, pages=pages_read, requests=requests)
    return result
