"""The config of kind ``getabstract``: usage reports (xlsx) of the summaries learners read."""

from __future__ import annotations

from typing import ClassVar, Literal

from schemas.kinds.content import ContentConnection


class GetabstractConnection(ContentConnection):
    DEFAULT_PATH: ClassVar[str] = "import/getabstract/*.xlsx"

    kind: Literal["getabstract"]
