"""Microsoft Graph delta (``incremental = true``): ``GET /v1.0/users/delta`` rounds.

A full round starts without a token (``$select`` and ``$expand=manager(...)`` as for /users, but no
``$top``, which delta refuses) and returns every user; a delta round starts at the whole
``@odata.deltaLink`` the last round ended with and returns the users changed since. Either follows
``@odata.nextLink`` until a page carries the new ``@odata.deltaLink``.

A removed user comes as ``{"id": ..., "@removed": {...}}``: named by its Graph id only, it is
written as its key (from the ids seen before, ``known``) with ``accountEnabled = false``, so the
users kind's state rules deactivate them; one never seen is skipped. Where the link is stored, and
when a full round is due, is the fetch stage's (workers/stages/fetch_delta.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from workers.http import ApiClient, FetchError
from workers.sources import msgraph
from workers.sources.records import Page, lookup

DELTA = "/v1.0/users/delta"


@dataclass
class DeltaRound:
    #: Where the round starts: the stored deltaLink, or None for a full round.
    link: str | None
    #: The field the mapping's key (email) names, e.g. ``mail``.
    key_field: str
    #: Graph id -> key of the people seen in earlier rounds (delta rounds only).
    known: dict[str, str] = field(default_factory=dict)
    new_link: str | None = None
    #: Graph id -> key of the people this round returned.
    seen: dict[str, str] = field(default_factory=dict)
    removed: int = 0

    @property
    def full(self) -> bool:
        return self.link is None


def pages(client: ApiClient, fields: tuple[str, ...], round_: DeltaRound) -> Iterator[Page]:
    url: str | None = round_.link or DELTA
    params: dict[str, str] | None = None
    if round_.link is None:
        params = msgraph.query(fields, client.api)
        params.pop("$top", None)
    number = 0
    while url is not None:
        body = client.get_json(url, params)
        number += 1
        records = body.get("value") if isinstance(body, dict) else None
        if not isinstance(records, list):
            raise FetchError(
                f"{client.name}: page {number} of {DELTA} has no 'value' list; the fetch was cut off and nothing "
                "was imported: check base_url points at Microsoft Graph"
            )
        assert isinstance(body, dict)
        link, done = body.get("@odata.nextLink"), body.get("@odata.deltaLink")
        url, params = (link, None) if isinstance(link, str) and link else (None, None)
        if url is None:
            if not isinstance(done, str) or not done:
                raise FetchError(
                    f"{client.name}: the last page of {DELTA} has neither @odata.nextLink nor @odata.deltaLink; the "
                    "fetch was cut off and nothing was imported"
                )
            round_.new_link = done
        yield Page(list(_records(records, round_)), more=url is not None)


def _records(records: list[object], round_: DeltaRound) -> Iterator[object]:
    for record in records:
        if not isinstance(record, dict):
            yield record  # written as a row without a key: a row error at its line
            continue
        graph_id = record.get("id")
        if "@removed" in record:
            key = round_.seen.get(str(graph_id)) or round_.known.get(str(graph_id))
            if key is not None:
                round_.removed += 1
                yield {round_.key_field: key, "accountEnabled": False}
            continue
        key = lookup(record, round_.key_field)
        if isinstance(graph_id, str) and isinstance(key, str) and key:
            round_.seen[graph_id] = key.strip().lower()
        yield record
