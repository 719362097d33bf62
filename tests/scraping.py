"""Reading a Prometheus endpoint as Prometheus does, for the metrics tests: the exposition text parsed
by prometheus_client's own parser, the metric names a PromQL expression uses, and the expressions of
deploy/observability's dashboard and alert rules."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

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
_KEYWORDS = {
    *("and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring"),
    *("group_left", "group_right", "inf", "nan"),
}


def metric_names(expr: str) -> set[str]:
    """The metric names in a PromQL expression: identifiers that are neither functions nor aggregations
    (followed by a parenthesis), labels (inside braces or a grouping), durations or keywords."""
    bare = _STRINGS.sub('""', expr)
    bare = _GROUPING.sub(" ", _RANGES.sub(" ", _MATCHERS.sub(" ", bare)))
    return {m for m in _IDENT.findall(bare) if m.lower() not in _KEYWORDS}


OBSERVABILITY = Path(__file__).resolve().parents[1] / "deploy" / "observability"
DASHBOARD = OBSERVABILITY / "grafana-dashboard.json"
ALERTS = OBSERVABILITY / "alerts.yml"
#: Grafana's own variables, as Prometheus would receive them.
GRAFANA_VARIABLES = {"$__rate_interval": "5m", "$__interval": "1m", "$__range": "1h"}


def dashboard_exprs() -> list[tuple[str, str]]:
    """(panel title, PromQL) of every target of the dashboard, Grafana's variables filled in."""
    found = []
    for panel in json.loads(DASHBOARD.read_text())["panels"]:
        for target in panel.get("targets", []):
            expr = target["expr"]
            for variable, value in GRAFANA_VARIABLES.items():
                expr = expr.replace(variable, value)
            found.append((panel["title"], expr))
    return found


def alert_exprs() -> list[tuple[str, str]]:
    """(alert name, PromQL) of every rule of alerts.yml, whose exprs are one line each (said in the file)."""
    names = re.findall(r"^\s*- alert: (\S+)\s*$", ALERTS.read_text(), re.MULTILINE)
    exprs = re.findall(r"^\s*expr: (.+?)\s*$", ALERTS.read_text(), re.MULTILINE)
    assert len(names) == len(exprs), "each alert rule has one expr, on one line"
    return list(zip(names, exprs, strict=True))
