"""The config of kind ``linkedin_learning``: LinkedIn Learning's catalog and its learners' activity,
pulled from LinkedIn's API each run (workers/sources/linkedin.py), never from dropped files.

```toml
[[connections]]
name = "linkedin"
kind = "linkedin_learning"
asset_types = ["COURSE"]              # assetFilteringCriteria.assetTypes
locales = ["en_US", "fr_FR"]          # assetFilteringCriteria.locales: language, and country after '_'
keywords = "python"                   # assetFilteringCriteria.keyword (optional)
libraries = ["Technology"]            # only courses in these LIBRARY classifications (optional)
tags = ["linkedin", "self-paced"]     # custom tags put on every course of this connection
activity_days = 7                     # learner activity of the last N days (0: no activity)
[connections.api]
client_id = "86abc…"                  # the application's Client ID (LinkedIn Learning admin settings)
client_secret_env = "LINKEDIN_CLIENT_SECRET"
```
"""

from __future__ import annotations

import re
from typing import ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from schemas.api import ApiConfig
from schemas.config_base import Connection
from schemas.config_parts import KeyProblem

#: LinkedIn's documented defaults (wave3-anchors §4.2, §4.3).
LINKEDIN_TOKEN_URL = "https://www.linkedin.com/oauth/v2/accessToken"  # noqa: S105 -- a URL
LINKEDIN_BASE_URL = "https://api.linkedin.com"
ASSET_TYPES = ("COURSE", "VIDEO", "LEARNING_PATH", "DOCUMENT", "AUDIO", "BOOK")
_LOCALE = re.compile(r"^[a-z]{2}(_[A-Z]{2})?$")


class LinkedInLearningConnection(Connection):
    OWN_KEYS: ClassVar[tuple[str, ...]] = ("asset_types", "locales", "keywords", "libraries", "tags", "activity_days")
    DEFAULT_PATH: ClassVar[str] = "import/linkedin_learning/*.csv"
    #: The catalog comes from the API: nothing is taken from the drop dir.
    TAKES_FILES: ClassVar[bool] = False

    kind: Literal["linkedin_learning"]
    trigger: Literal["on_arrival", "on_schedule"] = "on_schedule"
    api: ApiConfig
    asset_types: list[str] = Field(default_factory=lambda: ["COURSE"], min_length=1, max_length=len(ASSET_TYPES))
    locales: list[str] = Field(default_factory=lambda: ["en_US"], min_length=1, max_length=50)
    keywords: str | None = Field(default=None, min_length=1, max_length=200)
    libraries: list[str] = Field(default_factory=list, max_length=100)
    tags: list[str] = Field(default_factory=list, max_length=50)
    activity_days: int = Field(default=7, ge=0, le=365)

    @field_validator("asset_types")
    @classmethod
    def _asset_types(cls, v: list[str]) -> list[str]:
        for t in v:
            if t not in ASSET_TYPES:
                raise KeyProblem(f"asset type {t!r} is not one of {', '.join(ASSET_TYPES)}", "asset_types")
        return v

    @field_validator("locales")
    @classmethod
    def _locales(cls, v: list[str]) -> list[str]:
        for loc in v:
            if not _LOCALE.match(loc):
                raise KeyProblem(
                    f"locale {loc!r} is not a language, or language_COUNTRY, e.g. 'en' or 'en_US'", "locales"
                )
        return v

    @model_validator(mode="after")
    def _api_rules(self) -> LinkedInLearningConnection:
        if self.api.private_key_file is not None:
            raise KeyProblem(
                "LinkedIn Learning takes client credentials: client_secret_env, not private_key_file", "api"
            )
        return self

    @property
    def fetched(self) -> bool:
        """Runs of this connection pull their feed from the API (the fetch stage)."""
        return True

    def locale_pairs(self) -> list[tuple[str, str | None]]:
        """(language, country or None) of each locale filter."""
        return [(loc[:2], loc[3:] or None) for loc in self.locales]
