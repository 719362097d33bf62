"""Realistic user feeds for the demo, the tests and the benchmarks: a manager tree, non-ASCII
names, departments with quoted commas, and optional bad rows at known lines."""

from __future__ import annotations

import csv
import random
from dataclasses import dataclass, field
from pathlib import Path

FIRST = [
    "Ana",
    "Björn",
    "Chloé",
    "Dmitri",
    "Eşref",
    "Fatima",
    "Grzegorz",
    "Hana",
    "Ígor",
    "Jürgen",
    "Kateřina",
    "Liam",
    "María",
    "Noé",
    "Olúwaseun",
    "Pål",
    "Qiu",
    "Renée",
    "Søren",
    "Tomás",
    "Úrsula",
    "Vítor",
    "Wei",
    "Xóchitl",
    "Yusuf",
    "Zoë",
]
LAST = [
    "Álvarez",
    "Bäcker",
    "Çelik",
    "Dubois",
    "Eriksson",
    "Fernández",
    "García",
    "Hämäläinen",
    "Ivanović",
    "Jensen",
    "Kowalski",
    "López",
    "Müller",
    "Nowak",
    "O'Brien",
    "Pérez",
    "Quist",
    "Rossi",
    "Šimek",
    "Tanaka",
    "Ulloa",
    "Varga",
    "Wójcik",
    "Xu",
    "Yılmaz",
    "Zielińska",
]
DEPARTMENTS = [
    "Sales, EMEA",
    "Sales, Americas",
    "Engineering",
    "Finance",
    "People & Culture",
    "Legal",
    'Support "Tier 2"',
    "Marketing",
]
HEADER = [
    "Email",
    "First Name",
    "Last Name",
    "Manager Email",
    "Department",
    "Job Title",
    "Location",
    "Employee ID",
    "Cost Center",
    "Hire Date",
    "Country",
    "Division",
    "Grade",
    "Phone",
    "Nickname",
]


@dataclass
class Feed:
    path: Path
    rows: int
    emails: list[str]
    managers: dict[str, str | None]
    bad_lines: dict[int, str] = field(default_factory=dict)  # line (header = 1) -> error code expected


def _person(i: int, rnd: random.Random) -> dict[str, str]:
    first, last = rnd.choice(FIRST), rnd.choice(LAST)
    return {
        "Email": f"user{i:07d}@example.com",
        "First Name": first,
        "Last Name": last,
        "Department": rnd.choice(DEPARTMENTS),
        "Job Title": rnd.choice(["Analyst", "Engineer", "Manager", "Director", "Specialist, Senior"]),
        "Location": rnd.choice(["Zürich", "São Paulo", "Kraków", "Lyon", "Austin", "Osaka"]),
        "Employee ID": f"E{i:07d}",
        "Cost Center": f"CC{rnd.randint(100, 999)}",
        "Hire Date": f"20{rnd.randint(10, 25)}-0{rnd.randint(1, 9)}-1{rnd.randint(0, 9)}",
        "Country": rnd.choice(["CH", "BR", "PL", "FR", "US", "JP"]),
        "Division": rnd.choice(["North", "South", "East", "West"]),
        "Grade": str(rnd.randint(1, 12)),
        "Phone": f"+41 44 {rnd.randint(100, 999)} {rnd.randint(10, 99)} {rnd.randint(10, 99)}",
        "Nickname": "",
    }


def generate_users(
    path: Path,
    n: int,
    *,
    seed: int = 7,
    bad_rows: int = 0,
    fanout: int = 8,
    changed_share: float = 0.0,
    change_seed: int = 11,
) -> Feed:
    """Write n people; person 0 is the top of the manager tree, person i reports to (i-1)//fanout.

    ``bad_rows`` rows (spread over leaves of the tree) carry an invalid e-mail; ``changed_share`` of people get a
    new job title and department (the "next day" feed of a daily HR export)."""
    rnd = random.Random(seed)
    chg = random.Random(change_seed)
    # Bad rows sit in the second half, where nobody reports to them (with fanout >= 2), so each
    # causes exactly one row error and no knock-on unknown-manager warnings.
    bad_at = set() if bad_rows == 0 else {n // 2 + int((k + 0.5) * (n - n // 2) / bad_rows) for k in range(bad_rows)}
    emails, managers, bad_lines = [], {}, {}
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(HEADER)
        for i in range(n):
            p = _person(i, rnd)
            manager = None if i == 0 else f"user{(i - 1) // fanout:07d}@example.com"
            p["Manager Email"] = manager or ""
            if changed_share and chg.random() < changed_share:
                # A promotion and a move: both in columns the example and demo connections map.
                p["Job Title"] = "Promoted " + p["Job Title"]
                p["Department"] = "Moved to " + p["Department"]
            if i in bad_at:
                p["Email"] = f"user{i:07d}.example.com"
                bad_lines[i + 2] = "invalid_email"
            else:
                emails.append(p["Email"])
                managers[p["Email"]] = manager
            w.writerow([p[h] for h in HEADER])
    return Feed(path, n, emails, managers, bad_lines)


DEMO_CONNECTIONS = """
[[connections]]
name = "hr-users"
kind = "users"
path = "import/user/internal/*.csv"
key = "email"

[connections.mapping]
email = "Email"
first_name = "First Name"
last_name = "Last Name"
manager = "Manager Email"
department = "Department"
job_title = "Job Title"
location = "Location"
nickname = "DontImportFromSource"
"""


BUNDLE_CONNECTIONS = """
[[connections]]
name = "hr"
kind = "hierarchy"
full_feed = true

[connections.files.org.mapping]
key = "idnumber"
name = "fullname"
parent = "parentidnumber"

[connections.files.pos.mapping]
key = "idnumber"
name = "fullname"

[connections.files.user.mapping]
key = "idnumber"
email = "email"
first_name = "firstname"
last_name = "lastname"
unit = "orgidnumber"
position = "posidnumber"
manager = "manageridnumber"
country = "country"

[[rules]]
group = "Unit U0001 and below"
unit = "U0001"
descendants = true

[[rules]]
group = "Everyone under P0000001"
manager = "P0000001"
"""


def generate_bundle(
    folder: Path, people: int, *, units: int = 2_000, positions: int = 500, fanout: int = 10, seed: int = 7
) -> dict[str, Path]:
    """org.csv, pos.csv and user.csv in Totara's columns: a unit tree (5 children each), positions,
    and people in a manager tree of ``fanout`` reports each (six levels for 100,000 people)."""
    rnd = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {part: folder / f"{part}.csv" for part in ("org", "pos", "user")}
    with open(paths["org"], "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["idnumber", "fullname", "parentidnumber"])
        for j in range(units):
            w.writerow([f"U{j:04d}", f"Unit {j}, {rnd.choice(DEPARTMENTS)}", "" if j == 0 else f"U{(j - 1) // 5:04d}"])
    with open(paths["pos"], "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["idnumber", "fullname"])
        for j in range(positions):
            w.writerow([f"POS{j:03d}", f"Position {j}"])
    with open(paths["user"], "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["idnumber", "email", "firstname", "lastname", "orgidnumber", "posidnumber", "manageridnumber",
                    "country"])  # fmt: skip
        for i in range(people):
            p = _person(i, rnd)
            w.writerow([
                f"P{i:07d}", p["Email"], p["First Name"], p["Last Name"], f"U{rnd.randrange(units):04d}",
                f"POS{rnd.randrange(positions):03d}", "" if i == 0 else f"P{(i - 1) // fanout:07d}", p["Country"],
            ])  # fmt: skip
    return paths
