"""No row value leaves in a log line, a stored error, a dead letter or a warning. A database error
quotes the row that broke it (``Key (email_key)=(ann@example.com) already exists``): feedsync keeps
only its SQLSTATE and the names of the constraint, table and column involved."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from producers.commands import apply_connections
from schemas.connections import load_connections_toml
from schemas.settings import get_settings
from tests.conftest import DATABASE_URL, sql
from tests.notifying import receiver
from tests.stubpipeline import HEADER, USERS_TOML, Pipeline
from workers.errors import safe_text, safe_traceback
from workers.logs import log_handler

PERSON = "ann.secret@example.com"

# A real duplicate, inserted by the database itself while the load writes a new person: the same
# error two connections adding the same e-mail at once would meet.
DUPLICATE_EVERY_NEW_PERSON = """
CREATE FUNCTION public.test_duplicate_person() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO lms.users (email) VALUES (NEW.email);
    RETURN NULL;
END $$;
CREATE TRIGGER test_duplicate_person AFTER INSERT ON lms.users
    FOR EACH ROW EXECUTE FUNCTION public.test_duplicate_person();
"""


@pytest.fixture
def logs() -> Iterator[io.StringIO]:
    """Every log line as feedsync writes it (JSON), dramatiq's own included."""
    out = io.StringIO()
    handler = log_handler(out, as_json=True)
    logging.getLogger().addHandler(handler)
    try:
        yield out
    finally:
        logging.getLogger().removeHandler(handler)


@pytest.fixture
def duplicates() -> Iterator[None]:
    sql(DUPLICATE_EVERY_NEW_PERSON)
    try:
        yield
    finally:
        sql("DROP TRIGGER test_duplicate_person ON lms.users; DROP FUNCTION public.test_duplicate_person()")


def database_errors() -> list[psycopg.Error]:
    caught = []
    with psycopg.connect(DATABASE_URL, autocommit=True) as conn:
        conn.execute("CREATE TEMP TABLE people (email text PRIMARY KEY, age int CHECK (age > 0))")
        conn.execute("INSERT INTO people VALUES (%s, 30)", (PERSON,))
        for query, params in (
            ("INSERT INTO people VALUES (%s, 31)", (PERSON,)),  # unique violation
            ("INSERT INTO people VALUES (%s, -1)", ("other@example.com",)),  # check violation
            ("SELECT %s::text::int", (PERSON,)),  # data error
        ):
            try:
                conn.execute(query, params)
            except psycopg.Error as exc:
                caught.append(exc)
    return caught


@pytest.mark.usefixtures("database")
def test_a_database_error_is_told_by_its_sqlstate_and_names_never_by_the_values_it_quotes() -> None:
    unique, check, data = database_errors()
    assert PERSON in str(unique) and "other@example.com" in str(check), "psycopg's own text quotes the row"
    assert safe_text(unique).startswith("UniqueViolation: SQLSTATE 23505, table pg_temp")  # a temp table's schema
    assert safe_text(unique).endswith(".people, constraint people_pkey")
    assert "constraint people_age_check" in safe_text(check) and "SQLSTATE 23514" in safe_text(check)
    assert safe_text(data) == "InvalidTextRepresentation: SQLSTATE 22P02"
    for exc in (unique, check, data):
        for text in (safe_text(exc), safe_traceback(exc)):
            assert PERSON not in text and "other@example.com" not in text


def test_other_exceptions_keep_their_sentence_but_not_the_values_they_quote() -> None:
    assert safe_text(KeyError(PERSON)) == "KeyError: '…'"
    assert safe_text(ValueError(f"no person {PERSON} here")) == "ValueError: no person … here"
    assert safe_text(RuntimeError("failpoint x: injected failure")) == "RuntimeError: failpoint x: injected failure"


def test_a_duplicate_key_in_a_stage_leaves_no_email_in_logs_stage_errors_dead_letters_or_the_webhook(
    pipeline: Pipeline, duplicates: None, logs: io.StringIO, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FEEDSYNC_MAX_ATTEMPTS", "2")
    monkeypatch.setenv("FEEDSYNC_WEBHOOK_ALLOW_PRIVATE", "true")  # the receiver is on 127.0.0.1
    get_settings.cache_clear()
    server, received = receiver()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/hook"
        apply_connections(load_connections_toml(f'{USERS_TOML}\n[connections.notify]\nwebhook = "{url}"\n'))
        run_id = pipeline.import_files(
            ("import/user/internal/a.csv", HEADER + f"{PERSON},Ann,Secret,,Sales\n"), expect_failures=True
        )
    finally:
        server.shutdown()
        server.server_close()

    ((status, run_error),) = sql("SELECT status, error FROM sync.runs WHERE id = %s", (run_id,))
    ((stage_status, stage_error),) = sql("SELECT status, error FROM sync.stage_runs WHERE stage = 'load'")
    assert (status, stage_status) == ("failed", "dead_lettered")
    assert stage_error.startswith("UniqueViolation: SQLSTATE 23505, table lms.users, constraint users_email_key")
    assert run_error == f"stage load dead-lettered after 2 attempts: {stage_error}"
    (dead_letter,) = sql("SELECT error, message::text FROM sync.dead_letters")
    assert "users_email_key" in dead_letter[1], "the archived traceback is kept, with its safe line"
    assert [(r["run_id"], r["status"], r["error"]) for r in received] == [(run_id, "failed", run_error)]

    written = {
        "logs": logs.getvalue(),
        "stage_runs": json.dumps(sql("SELECT error FROM sync.stage_runs")),
        "runs": json.dumps(sql("SELECT error, note FROM sync.runs")),
        "dead_letters": json.dumps(dead_letter),
        "notifications": json.dumps(sql("SELECT error FROM sync.notifications")),
        "webhook": json.dumps(received),
    }
    assert "Failed to process message" in written["logs"] and "users_email_key" in written["logs"]
    leaks = [where for where, text in written.items() if PERSON.split("@")[0] in text.lower()]
    assert leaks == [], f"the e-mail left in {leaks}"


@pytest.mark.usefixtures("database")
def test_an_exception_logged_as_a_field_is_written_as_its_safe_text(logs: io.StringIO) -> None:
    import structlog

    unique = database_errors()[0]
    structlog.get_logger("test").warning("something failed", error=unique)
    try:
        raise unique
    except psycopg.Error:
        structlog.get_logger("test").exception("and with its traceback")
    line: dict[str, Any] = json.loads(logs.getvalue().splitlines()[0])
    assert line["error"].startswith("UniqueViolation: SQLSTATE 23505")
    assert PERSON not in logs.getvalue() and "people_pkey" in logs.getvalue()
