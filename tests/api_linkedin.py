"""A LinkedIn Learning server of ours (on tests/apiservers.py's ``Served``), from LinkedIn's documented
shapes (../shared/reference/wave3-anchors.md §4): the client credentials token at
``/oauth/v2/accessToken``, ``GET /v2/learningAssets?q=criteria`` filtering by the asset types,
locales and keyword it is sent, and ``GET /v2/learningActivityReports?q=criteria``, both paged by
``start``/``count`` with ``paging.total``; a ``count`` over 100 is refused with 403 as LinkedIn
does, and a missing or wrong parameter with 400. A planned ``fail(path, 429)`` is the daily quota.

Builders of catalog elements and activity reports are here too, for every LinkedIn test. With
``folder``, the server reads its catalog and activity from ``catalog.json`` and ``activity.json``
there at each request (the standard kind suite drops them as a delivery).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.apiservers import CLIENT_ID, CLIENT_SECRET, Served, Vendor

SECRET_ENV = "LINKEDIN_CLIENT_SECRET"  # noqa: S105 -- the name of a variable, not a secret
DAY_MS = 86_400_000
#: 2026-11-02 00:00 UTC, in epoch milliseconds.
NOV_2 = 1_793_577_600_000


def course(
    n: int, locale: str = "en_US", *, library: str = "Technology", skills: tuple[str, ...] = ()
) -> dict[str, Any]:
    """A catalog element as learningAssets returns one (``urn:li:lyndaCourse:<n>``)."""
    language, _, country = locale.partition("_")
    classifications = [
        {"associatedClassification": {"urn": f"urn:li:lyndaCategory:{9000 + i}", "type": t, "name": {"value": v}}}
        for i, (t, v) in enumerate(
            [("LIBRARY", library), ("SUBJECT", "Software Development")] + [("SKILL", s) for s in skills]
        )
    ]
    return {
        "urn": f"urn:li:lyndaCourse:{n}",
        "type": "COURSE",
        "title": {"value": f"Course {n}", "locale": {"language": language, "country": country}},
        "details": {
            "availability": "AVAILABLE",
            "classifications": classifications,
            "publishedAt": NOV_2 - 30 * DAY_MS,
            "lastUpdatedAt": NOV_2 - n * 1000,
            "description": {"value": f"All about topic {n}."},
            "timeToComplete": {"duration": 3600 + 60 * (n % 30), "unit": "SECOND"},
            "urls": {"webLaunch": f"https://www.linkedin.com/learning/course-{n}"},
            "images": {"primary": f"https://media.licdn.com/course-{n}.jpg"},
            "contributors": [{"name": {"value": "Ann Author"}}],
        },
    }


def renamed(c: dict[str, Any], title: str) -> dict[str, Any]:
    """A catalog element under another title."""
    return {**c, "title": {**c["title"], "value": title}}


def activity(email: str, course_n: int, *, seconds: int, progress: int, completions: int = 0) -> dict[str, Any]:
    """An INDIVIDUAL x CONTENT activity report element."""
    first, last = NOV_2, NOV_2 + 3 * DAY_MS
    kinds = [("SECONDS_VIEWED", seconds), ("PROGRESS_PERCENTAGE", progress), ("COMPLETIONS", completions)]
    return {
        "latestDataAt": last,
        "learnerDetails": {"email": email, "uniqueUserId": email.upper(), "entity": {"profileUrn": "urn:li:person:x"}},
        "contentDetails": {"contentUrn": f"urn:li:lyndaCourse:{course_n}"},
        "activities": [
            {
                "engagementType": k,
                "engagementValue": v,
                "engagementMetricQualifier": "TOTAL",
                "firstEngagedAt": first,
                "lastEngagedAt": last,
            }
            for k, v in kinds
        ],
    }


_INDEXED = re.compile(r"^assetFilteringCriteria\.locales\[(\d+)\]\.(language|country)$")


@dataclass
class LinkedInVendor(Vendor):
    people: list[dict[str, Any]] = field(default_factory=list)
    courses: list[dict[str, Any]] = field(default_factory=list)
    reports: list[dict[str, Any]] = field(default_factory=list)
    folder: Path | None = None

    def token(self, form: dict[str, list[str]]) -> tuple[int, dict[str, Any]]:
        if form.get("grant_type") != ["client_credentials"] or form.get("client_id") != [CLIENT_ID]:
            return 400, {"error": "invalid_request", "error_description": "A required parameter is missing"}
        if form.get("client_secret") != [CLIENT_SECRET]:
            return 401, {"error": "invalid_client", "error_description": "Client authentication failed"}
        return 200, {"access_token": self.new_token(), "expires_in": 1799}

    def unauthorized(self) -> dict[str, Any]:
        return {"status": 401, "serviceErrorCode": 65600, "code": "INVALID_ACCESS_TOKEN", "message": "Invalid token"}

    def fault_body(self) -> dict[str, Any]:
        return {
            "status": 429,
            "serviceErrorCode": 101,
            "code": "TOO_MANY_REQUESTS",
            "message": "Resource level throttle APPLICATION DAY limit for calls to this resource is reached.",
        }

    def _load(self) -> None:
        if self.folder is None:
            return
        for name, attr in (("catalog.json", "courses"), ("activity.json", "reports")):
            path = self.folder / name
            setattr(self, attr, json.loads(path.read_text()) if path.exists() else [])

    def get(self, path: str, query: dict[str, list[str]], headers: dict[str, str]) -> tuple[int, Any, dict[str, str]]:
        self._load()
        one = {k: v[-1] for k, v in query.items()}
        if one.get("q") != "criteria":
            return 400, {"status": 400, "message": "q=criteria is required"}, {}
        try:
            start, count = int(one["start"]), int(one["count"])
        except (KeyError, ValueError):
            return 400, {"status": 400, "message": "start and count are required"}, {}
        if count > 100:
            return 403, {"status": 403, "message": "count over 100"}, {}
        if path == "/v2/learningAssets":
            found = self._catalog(one)
        elif path == "/v2/learningActivityReports":
            wanted = {
                "aggregationCriteria.primary": "INDIVIDUAL",
                "aggregationCriteria.secondary": "CONTENT",
                "timeOffset.unit": "DAY",
            }
            if any(one.get(k) != v for k, v in wanted.items()) or not one.get("startedAt", "").isdigit():
                return 400, {"status": 400, "message": "bad aggregation or time range"}, {}
            found = self.reports
        else:
            return 404, {"status": 404, "message": "Not Found"}, {}
        page = {"start": start, "count": count, "total": len(found), "links": []}
        return 200, {"elements": found[start : start + count], "paging": page}, {}

    def _catalog(self, one: dict[str, str]) -> list[dict[str, Any]]:
        types = {v for k, v in one.items() if k.startswith("assetFilteringCriteria.assetTypes[")}
        locales: dict[str, dict[str, str]] = {}
        for k, v in one.items():
            if m := _INDEXED.match(k):
                locales.setdefault(m.group(1), {})[m.group(2)] = v
        keyword = one.get("assetFilteringCriteria.keyword", "").lower()

        def matches(c: dict[str, Any]) -> bool:
            loc = c["title"]["locale"]
            in_locale = not locales or any(
                loc["language"] == w.get("language") and w.get("country") in (None, loc["country"])
                for w in locales.values()
            )
            return c["type"] in types and in_locale and keyword in c["title"]["value"].lower()

        return [c for c in self.courses if matches(c)]


def linkedin_toml(url: str, extra: str = "") -> str:
    """A linkedin_learning connection aimed at a server of ours (short backoff: nothing here waits)."""
    return f"""
[[connections]]
name = "linkedin"
kind = "linkedin_learning"
locales = ["en_US", "fr_FR"]
tags = ["linkedin", "self-paced"]
{extra}
[connections.api]
client_id = "{CLIENT_ID}"
client_secret_env = "{SECRET_ENV}"
token_url = "{url}/oauth/v2/accessToken"
base_url = "{url}"
backoff_s = 0.01
max_backoff_s = 0.05
"""


def people_csv(emails: list[str]) -> str:
    """An hr-users feed (tests/stubpipeline.py's HEADER) of these people."""
    rows = "".join(f"{e},First{i},Last{i},,Learning\n" for i, e in enumerate(emails))
    return "Email,First Name,Last Name,Manager Email,Department\n" + rows


@contextmanager
def sample_server(folder: Path) -> Iterator[str]:
    """A server answering what is dropped in ``folder`` (tests/kindsamples.py's deliveries), with the
    secret in the environment while it runs; yields its URL."""
    folder.mkdir(parents=True, exist_ok=True)
    before = os.environ.get(SECRET_ENV)
    os.environ[SECRET_ENV] = CLIENT_SECRET
    try:
        with Served(LinkedInVendor(folder=folder)) as served:
            yield served.url
    finally:
        if before is None:
            os.environ.pop(SECRET_ENV, None)
        else:
            os.environ[SECRET_ENV] = before
