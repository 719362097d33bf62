"""Alerts: the open ones (or all), and acknowledging one."""

from __future__ import annotations

import click

from producers.cli.base import cli, echo_json, echo_table, fail


@cli.group(invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True)
@click.option("--all", "include_resolved", is_flag=True, help="include resolved alerts")
@click.pass_context
def alerts(ctx: click.Context, as_json: bool, include_resolved: bool) -> None:
    """Feed alarms: open alerts (NEW, ACKNOWLEDGED), newest first; `alerts ack ID` acknowledges one."""
    if ctx.invoked_subcommand is not None:
        return
    from producers.alerts import list_alerts

    rows = list_alerts(include_resolved)
    if as_json:
        echo_json(rows)
    else:
        echo_table(rows, ["id", "kind", "connection", "state", "first_seen", "last_seen", "acknowledged_by", "message"])


@alerts.command("ack")
@click.argument("alert_id", type=int)
@click.option("--by", help="who acknowledges it (default: the OS user, as user@host)")
def alerts_ack(alert_id: int, by: str | None) -> None:
    """Acknowledge an alert: it is not sent again while its condition lasts."""
    from producers.alerts import NotAcknowledged, acknowledge
    from producers.dlq import admin_identity

    try:
        row = acknowledge(alert_id, by or admin_identity())
    except NotAcknowledged as exc:
        fail(str(exc))
    click.echo(f"alert {row['id']} ({row['kind']} on {row['connection']}) acknowledged by {row['acknowledged_by']}")
