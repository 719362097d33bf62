"""The tap side of the Singer peer: the bench's users feed as Singer messages on stdout, for
MeltanoLabs' target-postgres to upsert on e-mail (benchmarks/peers.py pipes the two together).

What a data engineer would write in place of tap-csv: one SCHEMA (every column a string, as the
file has it; column names in snake_case, as dlt normalises them; key_properties ["email"], so the
target's upsert merges on e-mail like dlt's merge), one RECORD per line, and a STATE at the end.
Standard library only: it runs under any Python. Prints nothing but the messages."""

from __future__ import annotations

import csv
import json
import sys

STREAM = "users"


def main(path: str) -> None:
    out = sys.stdout
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.reader(f)
        names = [h.strip().lower().replace(" ", "_") for h in next(reader)]
        schema = {"type": "object", "properties": {n: {"type": ["string", "null"]} for n in names}}
        out.write(json.dumps({"type": "SCHEMA", "stream": STREAM, "schema": schema, "key_properties": ["email"]}))
        out.write("\n")
        lines = 0
        for row in reader:
            out.write(json.dumps({"type": "RECORD", "stream": STREAM, "record": dict(zip(names, row, strict=True))}))
            out.write("\n")
            lines += 1
    state = {"bookmarks": {STREAM: {"file": path, "lines": lines}}}
    out.write(json.dumps({"type": "STATE", "value": state}) + "\n")
    out.flush()


if __name__ == "__main__":
    main(sys.argv[1])
