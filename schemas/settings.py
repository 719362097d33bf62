"""Runtime settings, read from the environment with the ``FEEDSYNC_`` prefix."""

from __future__ import annotations

import ipaddress
import os
import re
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

#: Where stored paths pointed before FEEDSYNC_STORE_DIR (relative to the drop dir).
LEGACY_STORE = ".feedsync"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FEEDSYNC_", extra="ignore", populate_by_name=True)

    # SecretStr so a password in the URL never reaches a log line or a repr.
    database_url: SecretStr = SecretStr("postgresql://postgres@127.0.0.1:5432/feedsync")
    broker_url: SecretStr = SecretStr("amqp://guest:guest@127.0.0.1:5672/%2F")
    drop_dir: Path = Path("var/drop")
    # Where feedsync keeps the files it took, until their retention ends. Outside the drop dir: HR
    # systems can write there, and a stored file must not change between intake and parse.
    store_dir: Path = Path("var/store")
    # Workers on several hosts: the store in S3-compatible object storage instead of the folder
    # (s3://bucket/prefix). Endpoint, region and credentials only from the standard AWS_* variables
    # or the instance's role, never here. The store dir then only stages a file the watcher is taking.
    store_url: str | None = None
    # This worker group's name in the stage records and `feedsync status` (default: the host's name).
    worker_group: str | None = Field(default=None, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,62}$")
    # Each worker group marks itself alive this often; one silent for 3 beats is listed as lost.
    heartbeat_interval_s: float = Field(default=10.0, gt=0)
    export_dir: Path = Path("var/export")
    # SSH private keys of SFTP connections (`feedsync sftp keygen`); a relative key_file is under it.
    keys_dir: Path = Path("var/keys")
    # The connections file the console writes connections it creates to (a connection applied from
    # a file gets its changes written to that file). None: console.connections.toml beside the file
    # connections were last applied from, else in the working directory.
    console_connections_file: Path | None = None

    # Broker connection health: a dead peer is noticed within two heartbeats, and a broker that
    # blocks publishers (memory or disk alarm) makes publish fail instead of hanging forever.
    broker_heartbeat_s: int = 30
    broker_blocked_timeout_s: int = 60

    # Rows per parse chunk: one transform message per chunk. Tens of thousands keeps messages
    # coarse (the broker does ~1k confirmed publishes/s) while letting two workers share a file.
    chunk_rows: int = Field(default=50_000, ge=100)
    # Users feeds: a clean block is validated, mapped and hashed in the worker (pyarrow) and reaches
    # the run's staging by one COPY; off: every chunk goes through the per-row SQL transform, the
    # path the vectorised one is compared with row by row (tests/unit/test_vector_path.py).
    vector_transform: bool = True
    # Rows per parse chunk (at most chunk_rows) of a kind that prepares its blocks in the worker
    # (xapi): a prepared block is held while the next is read ahead, about 1 KB a statement, so
    # the worker's peak grows with the block. 25k kept an xAPI import's worker near 235 MB, 50k
    # took it to 260 (issue #32's bound: 250).
    block_rows: int = Field(default=25_000, ge=100)
    # Online loads commit this many staged rows per transaction, so no lock is held for long.
    load_batch_rows: int = Field(default=50_000, ge=1)
    # ... and new people in batches of this many (inserts block no reader; fewer, larger ones are faster).
    load_insert_rows: int = Field(default=1_000_000, ge=1)
    # A batch of at least this many new people, into a store with no more people than that, is
    # inserted with the e-mail and manager indexes built afterwards (workers/connectors/people_bulk.py),
    # if lms.users can be had for the insert within load_bulk_lock_s; 0 turns this off.
    load_bulk_rows: int = Field(default=100_000, ge=0)
    load_bulk_lock_s: float = Field(default=5.0, gt=0)
    # maintenance_work_mem for building those indexes.
    load_index_mem: str = Field(default="256MB", pattern=r"^\d+(kB|MB|GB)$")
    # work_mem for the load's and the transform's transactions (per sort or hash node; each worker
    # thread may use it).
    load_work_mem: str = Field(default="128MB", pattern=r"^\d+(kB|MB|GB)$")
    # A record that spans more lines or characters than this is reported as an unclosed quote.
    max_record_lines: int = Field(default=200, ge=2)
    # The run journal (workers/runs/journal.py): what each load changed, so the run can be undone
    # (`feedsync undo`). Off: loads write no journal and their runs cannot be undone.
    journal: bool = True
    # A run's journal holds the rows as they were before it (people's data): it is removed this many
    # days after the run ended, and the run can no longer be undone.
    journal_retention_days: int = Field(default=30, ge=1)
    max_field_chars: int = Field(default=65_536, ge=1024)

    # xAPI import: mapped statements of the common shapes are checked by a fast pass, the rest by
    # ralph; false sends every statement to ralph (the reference the fast pass is tested against).
    xapi_fast_path: bool = True
    # pyarrow's allocator in the worker (blocks prepared with pyarrow). Not pyarrow's default,
    # mimalloc: it keeps the pages a block freed, and an xAPI import's worker peaked ~35 MB higher
    # under it than under jemalloc, at the same speed (issue #32). Where pyarrow has no jemalloc
    # (its Windows builds), the system allocator.
    arrow_memory_pool: Literal["jemalloc", "mimalloc", "system"] = "jemalloc"

    # Content feeds (hmm, getabstract) are kept this many days after their run, then removed.
    content_retention_days: int = Field(default=7, ge=0)
    retention_sweep_interval_s: float = Field(default=300.0, gt=0)
    # The scheduler evaluates feed alarms (producers/alarms.py) this often.
    alarm_interval_s: float = Field(default=60.0, gt=0)

    # Workbooks are refused, before and while streaming, past these limits: a zip bomb, a sheet
    # filled to Excel's last row (a cut-off export), thousands of sheets or columns.
    xlsx_max_unpacked_mb: int = Field(default=1024, ge=1)
    xlsx_max_ratio: int = Field(default=100, ge=2)  # uncompressed / compressed size of one part
    xlsx_max_shared_strings_mb: int = Field(default=64, ge=1)  # held in memory while reading
    xlsx_max_sheets: int = Field(default=100, ge=1)
    xlsx_max_rows: int = Field(default=1_000_000, ge=1)
    # Columns a feed (CSV or workbook) may have: a wider file is refused as soon as its header is
    # read. Up to Excel's 16,384; a file wider than PostgreSQL's 1,600 columns per table is read by
    # the Python reader (which keeps the mapped columns only) instead of COPY. The workbook-only
    # name of earlier versions is still read.
    max_columns: int = Field(
        default=500, ge=1, le=16_384, validation_alias=AliasChoices("FEEDSYNC_MAX_COLUMNS", "FEEDSYNC_XLSX_MAX_COLUMNS")
    )

    # Warnings for runs with errors (a connection's [connections.notify]): e-mail through this SMTP
    # server, and webhooks; each waits at most notify_timeout_s.
    smtp_host: str | None = None
    smtp_port: int = Field(default=587, ge=1, le=65535)
    smtp_tls: Literal["starttls", "ssl", "none"] = "starttls"
    smtp_user: str | None = None
    smtp_password: SecretStr | None = None
    smtp_from: str = "feedsync@localhost"
    # With smtp_tls "none", a user and password would cross the network in clear: refused unless this
    # says the path to the server is trusted (a relay on the same host or a private link).
    smtp_allow_plaintext_auth: bool = False
    notify_timeout_s: float = Field(default=10.0, gt=0)
    # A webhook whose host resolves to a loopback, private, link-local, multicast or unspecified
    # address is refused: a connection's webhook must not reach into the network feedsync runs in.
    webhook_allow_private: bool = False

    # Failure policy (see workers.errors): attempts are counted in PostgreSQL.
    max_attempts: int = Field(default=5, ge=1)
    min_backoff_ms: int = Field(default=1_000, ge=10)
    max_backoff_ms: int = Field(default=120_000, ge=100)
    statement_timeout_ms: int = Field(default=600_000, ge=1_000)
    # Without it libpq waits forever for a server that accepts the connection and never answers.
    database_connect_timeout_s: int = Field(default=10, ge=2)
    lock_timeout_ms: int = Field(default=30_000, ge=100)
    stage_time_limit_ms: int = Field(default=3_600_000, ge=1_000)

    # Intake: a file must stay unchanged this long after its last write before it is taken, so a
    # file closed and written again within the window is not taken half. A connection's
    # settle_seconds overrides it.
    settle_ms: int = Field(default=3_000, ge=0)
    rescan_interval_s: float = Field(default=30.0, gt=0)
    outbox_sweep_interval_s: float = Field(default=5.0, gt=0)
    outbox_grace_s: float = Field(default=10.0, ge=0)

    # Half the cores: on a host shared with PostgreSQL the database does most of a stage's work, and on
    # 2 cores one and two worker processes measure within run-to-run noise of each other
    # (benchmarks/RESULTS.md), so more processes only add contention there. Add hosts to scale.
    worker_processes: int = Field(default_factory=lambda: max(1, (os.cpu_count() or 2) // 2), ge=1)
    worker_threads: int = Field(default=2, ge=1)

    # The admin console (`feedsync web`): where it listens (`feedsync up` starts it only when this is
    # set; `feedsync web` alone defaults to 127.0.0.1:8080), how long a sign-in lasts, and how many
    # failed sign-ins (per name tried, or per client address) within the window lock sign-in out.
    web_bind: str | None = Field(default=None, pattern=r"^[^\s:]+:\d{1,5}$")
    web_tls_cert: Path | None = None
    web_tls_key: Path | None = None
    web_session_hours: float = Field(default=12.0, gt=0)
    web_signin_max_failures: int = Field(default=5, ge=1)
    web_signin_window_s: int = Field(default=900, ge=1)
    # Addresses (or networks) of reverse proxies whose X-Forwarded-For and X-Forwarded-Proto are
    # believed, comma-separated. None by default: anyone who reaches the console's port from its own
    # host (an SSH tunnel, another local user) could otherwise choose the address the sign-in
    # throttle and the audit see.
    web_trusted_proxies: str | None = None
    # The console's statements are small: one that takes longer than this is cancelled, and the
    # page says the database is not answering (instead of the stages' FEEDSYNC_STATEMENT_TIMEOUT_MS).
    web_statement_timeout_ms: int = Field(default=15_000, ge=100)
    # At most this many requests use PostgreSQL at once (each on a thread of its own): a frozen
    # database holds these threads only, never those that serve static files.
    web_db_threads: int = Field(default=8, ge=1)
    # A console upload (all its files, one request) larger than this is refused before it is read;
    # what it holds is streamed to the drop folder, never held in memory.
    web_upload_max_mb: int = Field(default=1024, ge=1)

    # Each worker group serves /metrics, /healthz and /readyz here (workers/metrics_server.py): one
    # address per group, so a second group on the same host needs another port. Loopback by default:
    # a container or pod sets 0.0.0.0:9191 for Prometheus and its probes to reach it.
    metrics_bind: str = Field(default="127.0.0.1:9191", pattern=r"^[^\s:]+:\d{1,5}$")
    # The scheduler serves the same there when set (off by default: `feedsync up` runs it beside a
    # worker group, which already has 9191).
    scheduler_metrics_bind: str | None = Field(default=None, pattern=r"^[^\s:]+:\d{1,5}$")

    log_level: str = "INFO"

    @field_validator("drop_dir", "store_dir", "export_dir", "keys_dir")
    @classmethod
    def _absolute(cls, v: Path) -> Path:
        # Resolved once, against the folder feedsync was started in, so every part of it (and every
        # child `feedsync up` starts) means the same folder; `feedsync status` shows it.
        return v.expanduser().resolve()

    @field_validator("store_url")
    @classmethod
    def _store_url(cls, v: str | None) -> str | None:
        if v is None or not v.strip():
            return None
        if not re.fullmatch(r"s3://[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9](/[^\s]*)?", v.strip()):
            raise ValueError(
                "s3://bucket or s3://bucket/prefix, with the bucket's name in lowercase letters, digits, dots "
                "and hyphens (3 to 63); the endpoint and credentials go in the AWS_* variables"
            )
        return v.strip().rstrip("/")

    @field_validator("web_trusted_proxies")
    @classmethod
    def _proxies(cls, v: str | None) -> str | None:
        if v is None or not v.strip():
            return None
        entries = [e.strip() for e in v.split(",") if e.strip()]
        for position, entry in enumerate(entries, 1):
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                # By its position, not its text: a mistyped value may be something pasted by mistake.
                raise ValueError(
                    "IP addresses or networks, comma-separated, e.g. 127.0.0.1,10.0.0.0/24 "
                    f"(entry {position} is not one)"
                ) from None
        return ",".join(entries)

    @property
    def trusted_proxies(self) -> list[str]:
        return self.web_trusted_proxies.split(",") if self.web_trusted_proxies else []

    @property
    def is_stub(self) -> bool:
        return self.broker_url.get_secret_value().startswith("stub://")

    @model_validator(mode="after")
    def _store_outside_drop(self) -> Settings:
        if self.store_dir.resolve().is_relative_to(self.drop_dir.resolve()):
            raise ValueError(
                "FEEDSYNC_STORE_DIR is inside FEEDSYNC_DROP_DIR: put it where HR systems cannot write, e.g. var/store"
            )
        return self

    def stored_file(self, stored_path: str) -> Path:
        """The file a sync.feed_files row's stored_path names. Files taken before the store moved
        out of the drop dir are still under its hidden .feedsync folder."""
        if stored_path.startswith(LEGACY_STORE + "/"):
            return self.drop_dir / stored_path
        return self.store_dir / stored_path


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
