"""Export connections are declared like the others and refused, with the line at fault, when wrong."""

from __future__ import annotations

import pytest

from schemas.connections import ConfigError, load_connections_toml
from schemas.exports import ExportConnection
from schemas.kinds import known_kinds


def test_export_connections_load_with_their_folder_and_transcript_status_filter() -> None:
    t, s, x = load_connections_toml(
        '[[connections]]\nname = "t"\nkind = "transcript_export"\nstatus = ["completed"]\nzip = true\n'
        '[[connections]]\nname = "s"\nkind = "skills_export"\n'
        '[[connections]]\nname = "x"\nkind = "xapi_export"\nlocation = "lrs/xapi"\n'
    )
    assert isinstance(t, ExportConnection) and isinstance(s, ExportConnection) and isinstance(x, ExportConnection)
    assert (t.location, t.status, t.zip) == ("transcripts", ["completed"], True)
    assert (s.location, s.status) == ("skills", None)
    assert x.location == "lrs/xapi"
    assert ExportConnection.model_validate(t.model_dump(mode="json")) == t, "stored config reads back the same"


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ('kind = "skills_export"\nstatus = ["completed"]', "connections.toml:5: connections[0] status: status filters"),
        ('kind = "transcript_export"\nmapping = { a = "b" }', "connections.toml:5: connections[0] mapping: Extra"),
        ('kind = "transcript_export"\nlocation = "../etc"', "connections.toml:5: connections[0] location: location"),
        ('kind = "transcript_export"\nstatus = ["done"]', "connections.toml:5: connections[0] status.0: Input should"),
        # Every kind of the registry, named in its order (export kinds among them).
        ('kind = "nonsense"', f"unknown kind 'nonsense'; this version supports: {', '.join(known_kinds())}"),
    ],
)
def test_a_wrong_export_connection_is_refused_with_the_line_at_fault(body: str, expected: str) -> None:
    with pytest.raises(ConfigError) as exc:
        load_connections_toml(f'\n[[connections]]\nname = "e"\n{body}\n')
    assert expected in str(exc.value)
