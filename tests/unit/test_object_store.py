"""The file store in S3-compatible object storage (moto's server on 127.0.0.1): multipart puts with
the SHA-256 kept and checked, ranged reads pinned to the object's version, a changed object refused,
and a whole users import through the stub pipeline with nothing left on the local disk."""

from __future__ import annotations

import hashlib
import os
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from schemas.settings import get_settings
from tests.conftest import sql
from tests.s3server import S3Server
from tests.stubpipeline import HEADER, Pipeline
from tests.unit.exportdata import export_connections, exported, learning, people, read_rows
from workers.files.objects import Changed, Missing, ObjectStore, file_store


def _store() -> ObjectStore:
    store = file_store(get_settings())
    assert isinstance(store, ObjectStore)
    return store


def _ranges_asked(store: ObjectStore) -> list[str]:
    """The Range header of every GET the client sends (what the server receives)."""
    seen: list[str] = []

    def note(request: Any, **_: Any) -> None:
        value = request.headers.get("Range", b"")
        seen.append(value.decode() if isinstance(value, bytes) else str(value))

    store._s3.meta.events.register("before-send.s3.GetObject", note)
    return seen


def test_a_large_file_goes_up_in_parts_and_reads_back_byte_for_byte_from_any_offset(
    s3: S3Server, settings: Any, tmp_path: Path
) -> None:
    data = os.urandom(20 << 20)
    source = tmp_path / "big.csv"
    source.write_bytes(data)
    digest = hashlib.sha256(data).hexdigest()
    store = _store()
    store.put("files/hr/big.csv", source, digest)

    head = s3.client().head_object(Bucket=s3.bucket, Key="feeds/files/hr/big.csv")
    assert head["ETag"].strip('"').endswith("-3")  # 20 MiB in 8 MiB parts: a multipart upload
    assert head["Metadata"]["sha256"] == digest
    store.verify("files/hr/big.csv", digest)

    asked = _ranges_asked(store)
    with store.open("files/hr/big.csv", digest) as f:
        f.seek(15_000_000)
        assert f.read(1000) == data[15_000_000:15_001_000]
        f.seek(-10, os.SEEK_END)
        assert f.read() == data[-10:]
    # Only the bytes from the offset were asked for, never the file from its start.
    assert asked and all(r.startswith("bytes=") and not r.startswith("bytes=0-") for r in asked), asked


def test_an_object_not_holding_the_registered_bytes_is_refused(s3: S3Server, settings: Any, tmp_path: Path) -> None:
    source = tmp_path / "a.csv"
    source.write_bytes(b"Email\nann@x.com\n")
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    store = _store()
    store.put("files/a.csv", source, digest)
    with pytest.raises(Changed):
        store.open("files/a.csv", hashlib.sha256(b"other").hexdigest())

    reader = store.open("files/a.csv", digest)
    # Replaced after the reader pinned its version: the next read is refused, not mixed.
    s3.client().put_object(
        Bucket=s3.bucket, Key="feeds/files/a.csv", Body=b"Email\nevil@x.com\n", Metadata={"sha256": digest}
    )
    with pytest.raises(Changed):
        reader.read()
    with pytest.raises(Changed):
        store.verify("files/a.csv", digest)  # same metadata, other bytes: the hash says so
    with pytest.raises(Missing):
        store.open("files/none.csv", digest)
    store.delete("files/a.csv")
    store.delete("files/a.csv")  # gone already is fine
    assert not store.exists("files/a.csv")


def test_a_users_feed_imports_through_the_object_store_and_leaves_no_file_on_local_disk(
    s3: S3Server,
    pipeline: Pipeline,
) -> None:
    rows = "".join(f"p{i}@x.com,P{i},Q,,Sales\n" for i in range(500))
    run_id = pipeline.import_files(("import/user/internal/a.csv", HEADER + rows))
    assert sql("SELECT status, counts->>'read' FROM sync.runs WHERE id = %s", (run_id,)) == [("completed", "500")]
    assert sql("SELECT count(*) FROM lms.users") == [(500,)]
    assert not [p for p in pipeline.settings.store_dir.rglob("*") if p.is_file()]
    stored = sql("SELECT stored_path FROM sync.feed_files")[0][0]
    # People feeds are removed at once after their run (retention), from the object store too.
    assert f"feeds/{stored}" not in s3.object_keys()


def test_an_export_is_written_to_the_object_store_before_its_folder_and_both_hold_the_same_bytes(
    s3: S3Server, pipeline: Pipeline
) -> None:
    export_connections()
    people(pipeline)
    learning()
    run = pipeline.sync("transcripts", date(2026, 11, 1))
    assert run["status"] == "completed", run
    delivered = exported(pipeline, run)
    assert read_rows(delivered)  # the window holds the learning records made above
    (key,) = [k for k in s3.object_keys() if k.startswith("feeds/exports/transcripts/")]
    ((run_id,),) = sql("SELECT id FROM sync.runs WHERE kind = 'transcript_export'")
    assert key.endswith(f"/run-{run_id}/{delivered.name}")
    body = s3.client().get_object(Bucket=s3.bucket, Key=key)["Body"].read()
    assert body == delivered.read_bytes()
    assert sql("SELECT sha256 FROM sync.exports") == [(hashlib.sha256(body).hexdigest(),)]


def test_a_store_url_that_is_not_s3_is_refused_with_a_sentence_and_credentials_never_go_in_it() -> None:
    from pydantic import ValidationError

    from schemas.settings import Settings

    with pytest.raises(ValidationError, match="endpoint and credentials go in the AWS_"):
        Settings(store_url="https://key:secret@s3.example.com/bucket")
    assert Settings(store_url="s3://acme-feedsync/store/").store_url == "s3://acme-feedsync/store"
    assert Settings(store_url="").store_url is None
