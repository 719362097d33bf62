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
    from producers.api_check import check as reach
    from producers.api_check import stored_config
    from workers.sources.preview import SHOWN

    try:
        config = stored_config(connection)
    except FeedsyncError as exc:
        fail(str(exc))
    if isinstance(config, LinkedInLearningConnection):
        _check_linkedin(connection, config)
        return
    try:
        checked = reach(connection)
    except FeedsyncError as exc:
        fail(str(exc))  # our own sentence: what failed and what to check, never a secret or a value
    spec, found = checked.spec, checked.found
    more = "more pages follow" if found.more else "the only page"
    signed_in = "signed in" if spec.source.startswith("workday") else "token received"
    click.echo(f"{printable(connection)}: {signed_in}; first page of {spec.source}: {found.records} records, {more}")
    click.echo("fields found: " + (", ".join(printable(f) for f in found.fields) or "(none)"))
    if found.missing:
        click.echo("mapped but on no record of this page: " + ", ".join(printable(f) for f in found.missing))
    click.echo(f"the first {min(SHOWN, found.records)} records as the mapping reads them (values masked):")
    for n, r in enumerate(found.rows, 1):
        out = "  (filtered out)" if found.left_out and found.left_out[n - 1] else ""
        click.echo(f"  {n}. " + "  ".join(f"{a}={printable(v)}" for a, v in r.items()) + out)
    if checked.filters is not None:
        click.echo(f"filters: {found.filtered} of the {found.records} records of this page would be filtered out")
        if found.by_tree:
            click.echo("under_managers is decided on the whole feed's manager tree when the run imports it")
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
