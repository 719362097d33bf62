"""``feedsync api check CONNECTION``: reach a connection's API source and show what the mapping makes of
its first page, masked, without writing anything."""

from __future__ import annotations

import click

from producers.cli.base import cli, fail
from producers.output import printable
from schemas.kinds.linkedin_learning import LinkedInLearningConnection
from schemas.settings import get_settings
from workers.errors import FeedsyncError


@cli.group()
def api() -> None:
    """API sources (source = "msgraph" or "salesforce", and kind linkedin_learning)."""


@api.command()
@click.argument("connection")
def check(connection: str) -> None:
    """Get a token and the first page of CONNECTION's API; print the fields found and the first 5
    records through the mapping, values masked. Nothing is written."""
    from schemas.kinds import connection_from_json
    from workers import store
    from workers.runs.flow import live_connection
    from workers.sources.preview import SHOWN, preview, spec_of

    with store.connect() as conn:
        row = live_connection(conn, connection)
    if row is None:
        fail(f"no connection named {connection!r}: see `feedsync connections list`")
    config = connection_from_json(row["config"])
    if isinstance(config, LinkedInLearningConnection):
        _check_linkedin(connection, config)
        return
    try:
        spec = spec_of(connection, config)
        found = preview(spec, getattr(config, "mapping", {}), get_settings())
    except FeedsyncError as exc:
        fail(str(exc))  # our own sentence: what failed and what to check, never a secret or a value
    more = "more pages follow" if found.more else "the only page"
    click.echo(f"{printable(connection)}: token received; first page of {spec.source}: {found.records} records, {more}")
    click.echo("fields found: " + (", ".join(printable(f) for f in found.fields) or "(none)"))
    if found.missing:
        click.echo("mapped but on no record of this page: " + ", ".join(printable(f) for f in found.missing))
    click.echo(f"the first {min(SHOWN, found.records)} records as the mapping reads them (values masked):")
    for n, r in enumerate(found.rows, 1):
        click.echo(f"  {n}. " + "  ".join(f"{a}={printable(v)}" for a, v in r.items()))
    click.echo("nothing was written")


def _check_linkedin(connection: str, config: LinkedInLearningConnection) -> None:
    """A token and the catalog's first page with the connection's filters: course titles, no people."""
    from workers.sources import linkedin

    try:
        total, rows = linkedin.first_page(connection, config, get_settings())
    except linkedin.QuotaExhausted:  # a check parks nothing: it only says so
        fail(f"{connection}: LinkedIn answered HTTP 429: the daily API quota is used up; check again after 00:00 UTC")
    except FeedsyncError as exc:
        fail(str(exc))
    click.echo(
        f"{printable(connection)}: token received; LinkedIn has {total} courses for the connection's filters "
        f"(locales {', '.join(config.locales)}; the libraries filter applies when a run reads them)"
    )
    for r in rows[:5]:
        click.echo(
            f"  {printable(r['urn'])}  {printable(r['title'])} ({printable(r['locale'])}, {printable(r['library'])})"
        )
    click.echo("nothing was written")
