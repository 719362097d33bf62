"""Alerts: the open ones (or all), and acknowledging one."""

from __future__ import annotations

import click

from producers.cli.base import cli, echo_json, echo_table, fail
from schemas.states import AlertKind


@cli.group(invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True)
@click.option("--all", "include_resolved", is_flag=True, help="include resolved alerts")
@click.pass_context
def alerts(ctx: click.Context, as_json: bool, include_resolved: bool) -> None:
    """Feed alarms: open alerts (NEW, ACKNOWLEDGED), newest first; `alerts ack` acknowledges them."""
    if ctx.invoked_subcommand is not None:
        return
    from producers.alerts import list_alerts

    rows = list_alerts(include_resolved)
    if as_json:
        echo_json(rows)
    else:
        echo_table(rows, ["id", "kind", "connection", "state", "first_seen", "last_seen", "acknowledged_by", "message"])


@alerts.command("ack")
@click.argument("alert_ids", type=int, nargs=-1)
@click.option(
    "--kind",
    "kinds",
    multiple=True,
    type=click.Choice(sorted(k.value for k in AlertKind)),
    help="every NEW alert of this kind (repeatable)",
)
@click.option(
    "--connection",
    "connections",
    multiple=True,
    help="every NEW alert of connections named so; * matches any text (repeatable)",
)
@click.option("--by", help="who acknowledges it (default: the OS user, as user@host)")
def alerts_ack(
    alert_ids: tuple[int, ...], kinds: tuple[str, ...], connections: tuple[str, ...], by: str | None
) -> None:
    """Acknowledge alerts: they are not sent again while their condition lasts. One ID, several,
    or every NEW alert matching --kind and --connection (all given criteria must hold; audited)."""
    from producers.alerts import NotAcknowledged, acknowledge, acknowledge_matching
    from producers.dlq import admin_identity

    who = by or admin_identity()
    try:
        if len(alert_ids) == 1 and not (kinds or connections):
            row = acknowledge(alert_ids[0], who)
            click.echo(
                f"alert {row['id']} ({row['kind']} on {row['connection']}) acknowledged by {row['acknowledged_by']}"
            )
            return
        rows = acknowledge_matching(who, ids=alert_ids, kinds=kinds, connections=connections, admin=who, client="cli")
    except NotAcknowledged as exc:
        fail(str(exc))
    click.echo(f"{len(rows)} alert(s) acknowledged by {who}:")
    for row in rows:
        click.echo(f"  {row['id']} ({row['kind']} on {row['connection']})")
