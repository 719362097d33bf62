"""Skills out to Workday: a ``skills_export`` run with ``[connections.workday]`` sends the window's
achievements to the workers' skills through the Talent web service's ``Manage_Skills`` operation.

``Manage_Skills`` (Talent, ``Manage_Skills_Request/Manage_Skills_Data``) takes one worker
(``Worker_Reference``) and the skill items to add to their profile, each by ``Skill_Name`` (or
``Skill_Item_Reference``) with ``Remove_Skill``; it answers the worker's skill item references.
``Put_Skill`` only maintains the tenant's catalogue of skill items, so it is not the one: an
achievement belongs to a worker. One request a person, the people read in batches of
``batch_size``; each person's outcome is a row of ``sync.workday_skill_results``.

- A person Workday does not know (a validation fault on the request's ``Worker_Reference``) is a row
  error ``workday_unknown_worker`` of the run, and the run goes on; so is a person without the
  worker-ID attribute (``workday_no_worker_id``), who is not sent at all; any other validation
  fault is ``workday_rejected`` with Workday's fault code.
- A refused user or password, a tenant that stays unreachable after the retries: the run fails
  with one sentence (a TerminalError), before or after some people were sent; a rerun sends the
  window again (adding a skill a worker already has changes nothing).
- One export run per Workday tenant at a time ("skills from multiple accounts cannot be exported
  simultaneously using the same Workday account"): a transaction-scoped advisory lock keyed by the
  tenant's host and name; a run that finds it taken is retried later (a TransientError).

What is sent is what the export's file holds: the window's achievements (``lms.user_skills``
changed in the window), not the removals (Workday keeps a skill a worker once had).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

import psycopg
import structlog
from psycopg import sql

from schemas.settings import Settings
from schemas.workday import WorkdayConfig
from workers import store
from workers.connectors.exporting import Window
from workers.errors import TransientError
from workers.http.soap import WD, SoapFault, WorkdayClient
from workers.rows import RunRow

log = structlog.get_logger(__name__)

SERVICE = "Talent"
#: Where a file name goes in sync.row_errors: the rows are people, not lines of a file.
RESULTS = "workday:Manage_Skills"


Outcome = tuple[int, str | None, str, int, str | None]  # user, worker ID, status, skills, fault code


def tenant_lock(conn: psycopg.Connection[Any], cfg: WorkdayConfig) -> bool:
    """Take the tenant's skills-export lock for this transaction; False: another run holds it."""
    key = f"workday-skills:{cfg.base_url}:{cfg.tenant}"
    row = store.fetch_one(conn, "SELECT pg_try_advisory_xact_lock(hashtextextended(%s, 0)) AS ok", (key,))
    return bool(row and row["ok"])


def request(cfg: WorkdayConfig, worker_id: str, skills: list[str]) -> ET.Element:
    root = ET.Element(f"{{{WD}}}Manage_Skills_Request", {f"{{{WD}}}version": cfg.version})
    data = ET.SubElement(root, f"{{{WD}}}Manage_Skills_Data")
    ref = ET.SubElement(data, f"{{{WD}}}Worker_Reference")
    ET.SubElement(ref, f"{{{WD}}}ID", {f"{{{WD}}}type": cfg.worker_id_type}).text = worker_id
    for name in skills:
        skill = ET.SubElement(data, f"{{{WD}}}Skill")
        ET.SubElement(skill, f"{{{WD}}}Remove_Skill").text = "false"
        ET.SubElement(skill, f"{{{WD}}}Skill_Name").text = name
    return root


def _people(cfg: WorkdayConfig, window: Window) -> sql.Composed:
    return sql.SQL(
        """SELECT u.id AS user_id, u.attributes ->> {attr} AS worker_id, array_agg(s.name ORDER BY s.name_key) AS skills
           FROM lms.user_skills us JOIN lms.users u ON u.id = us.user_id JOIN lms.skills s ON s.id = us.skill_id
           WHERE {window}
           GROUP BY u.id ORDER BY u.id"""
    ).format(attr=sql.Literal(cfg.worker_id_attribute), window=window.where(sql.SQL("us.updated_at")))


def send(
    conn: psycopg.Connection[Any], run: RunRow, cfg: WorkdayConfig, window: Window, settings: Settings
) -> dict[str, int]:
    """Every person's achievements of ``window`` to Workday; their outcomes recorded. Counts by outcome."""
    if not tenant_lock(conn, cfg):
        raise TransientError(f"another skills export to the Workday tenant {cfg.tenant} is running; this one waits")
    counts = {"sent": 0, "unknown_worker": 0, "rejected": 0, "no_worker_id": 0}
    with WorkdayClient(run.connection_name, cfg, settings) as client, conn.cursor(name=f"wd-skills-{run.id}") as cur:
        cur.execute(_people(cfg, window))
        while batch := cur.fetchmany(cfg.batch_size):
            outcomes = [_one(client, cfg, user, worker, list(skills)) for user, worker, skills in batch]
            _record(conn, run.id, cfg, outcomes, first=sum(counts.values()) + 1)
            for outcome in outcomes:
                counts[outcome[2]] += 1
            log.info("workday skills batch sent", run_id=run.id, people=len(batch))
    return counts


def _one(client: WorkdayClient, cfg: WorkdayConfig, user_id: int, worker_id: str | None, skills: list[str]) -> Outcome:
    if not worker_id:
        return user_id, None, "no_worker_id", len(skills), None
    try:
        client.soap(SERVICE, request(cfg, worker_id, skills))
    except SoapFault as fault:
        unknown = fault.code.endswith("validationError") and "Worker_Reference" in fault.xpath
        return user_id, worker_id, "unknown_worker" if unknown else "rejected", len(skills), fault.code
    return user_id, worker_id, "sent", len(skills), None


_MESSAGES = {
    "unknown_worker": "Workday knows no worker with this {type}: the person's skills were not sent; correct "
    "their {attr} attribute or import them from Workday",
    "no_worker_id": "the person has no {attr} attribute, so Workday cannot be told whose skills they are: "
    "import it (e.g. from Workday's Worker_Reference/ID[@type='Employee_ID'])",
    "rejected": "Workday refused the person's skills (SOAP fault {code}): check the skill names and the "
    "Integration System User's permissions",
}


def _record(
    conn: psycopg.Connection[Any], run_id: int, cfg: WorkdayConfig, outcomes: list[Outcome], first: int
) -> None:
    """The batch's outcomes; a person not sent is a row error numbered by their place in the send
    (``line``: the people are sent in the order of their ids)."""
    with conn.cursor() as cur:
        cur.executemany(
            """INSERT INTO sync.workday_skill_results (run_id, user_id, worker_id, skills, status, code)
               VALUES (%s, %s, %s, %s, %s, %s)
               ON CONFLICT (run_id, user_id) DO UPDATE
               SET worker_id = excluded.worker_id, skills = excluded.skills, status = excluded.status,
                   code = excluded.code, sent_at = clock_timestamp()""",
            [(run_id, u, w, n, status, code) for u, w, status, n, code in outcomes],
        )
        errors = [
            (
                run_id,
                RESULTS,
                first + i,
                f"workday_{status}",
                _MESSAGES[status].format(type=cfg.worker_id_type, attr=cfg.worker_id_attribute, code=code),
                w,
            )
            for i, (_, w, status, _, code) in enumerate(outcomes)
            if status != "sent"
        ]
        cur.executemany(
            """INSERT INTO sync.row_errors (run_id, file_name, line, code, message, value, rejected)
               VALUES (%s, %s, %s, %s, %s, %s, true)""",
            errors,
        )
