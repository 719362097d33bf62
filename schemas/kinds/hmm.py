"""The config of kind ``hmm`` (Harvard ManageMentor): course metadata and learner progress feeds."""

from __future__ import annotations

from typing import ClassVar, Literal

from schemas.kinds.content import ContentConnection


class HmmConnection(ContentConnection):
    DEFAULT_PATH: ClassVar[str] = "import/hmm/*.csv"

    kind: Literal["hmm"]
