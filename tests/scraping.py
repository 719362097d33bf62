"""Reading a Prometheus endpoint as Prometheus does, for the metrics tests: the exposition text parsed
by prometheus_client's own parser, and the metric names a PromQL expression uses."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import httpx
from prometheus_client.parser import text_string_to_metric_families


@dataclass
class Scrape:
    families: dict[str, str] = field(default_factory=dict)  # family name -> type
    samples: list[tuple[str, dict[str, str], float]] = field(default_factory=list)

    def names(self) -> set[str]:
        """Every name a query can use: the sample names (``_total``, ``_bucket``, ...) and the families."""
        return {name for name, _, _ in self.samples} | set(self.families)

    def value(self, name: str, **labels: str) -> float | None:
        """The sum of the samples of ``name`` whose labels include ``labels``; None if there is none."""
        found = [v for n, ls, v in self.samples if n == name and labels.items() <= ls.items()]
        return sum(found) if found else None

    def label_values(self) -> set[str]:
        return {v for _, labels, _ in self.samples for v in labels.values()}


def scrape(url: str) -> Scrape:
    response = httpx.get(url, timeout=30)
    assert response.status_code == 200, response.text[:500]
    assert response.headers["content-type"].startswith("text/plain"), response.headers
    result = Scrape()
    for family in text_string_to_metric_families(response.text):
        result.families[family.name] = family.type
        result.samples.extend((s.name, dict(s.labels), s.value) for s in family.samples)
    return result


_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'')
_MATCHERS = re.compile(r"\{[^}]*\}")
_RANGES = re.compile(r"\[[^\]]*\]")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_IDENT = re.compile(r"(?<![\w:.])([a-zA-Z_:][a-zA-Z0-9_:]*)\b(?!\s*\()")
_KEYWORDS = {"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring", "inf", "nan"}


def metric_names(expr: str) -> set[str]:
    """The metric names in a PromQL expression: identifiers that are neither functions nor aggregations
    (followed by a parenthesis), labels (inside braces or a grouping), durations or keywords."""
    bare = _STRINGS.sub('""', expr)
    bare = _GROUPING.sub(" ", _RANGES.sub(" ", _MATCHERS.sub(" ", bare)))
    return {m for m in _IDENT.findall(bare) if m.lower() not in _KEYWORDS}
