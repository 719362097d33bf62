"""A real S3 API server on 127.0.0.1 for the object store tests: moto's server mode (its Werkzeug
server in a thread of the test process, on a free port), one bucket, and the AWS_* variables a
feedsync process reads, so workers started as subprocesses reach the same endpoint."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

BUCKET = "feedsync-test"


@dataclass(frozen=True)
class S3Server:
    endpoint: str
    bucket: str

    @property
    def env(self) -> dict[str, str]:
        """What a feedsync process needs to use this store (credentials are moto's, not secrets)."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "FEEDSYNC_STORE_URL": f"s3://{self.bucket}/feeds",
        }

    def client(self) -> Any:
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",  # noqa: S106 - moto's, not a secret
        )

    def object_keys(self) -> list[str]:
        pages = self.client().get_paginator("list_objects_v2").paginate(Bucket=self.bucket)
        return sorted(o["Key"] for page in pages for o in page.get("Contents", []))


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture
def s3(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[S3Server]:
    """An empty bucket, and this process's environment pointing the store at it (ask for it before
    ``settings`` or ``pipeline``, which read the environment)."""
    server = S3Server(s3_endpoint, BUCKET)
    client = server.client()
    if BUCKET not in {b["Name"] for b in client.list_buckets().get("Buckets", [])}:
        client.create_bucket(Bucket=BUCKET)
    for key in server.object_keys():
        client.delete_object(Bucket=BUCKET, Key=key)
    for name, value in server.env.items():
        monkeypatch.setenv(name, value)
    from schemas.settings import get_settings
    from workers.files import objects

    get_settings.cache_clear()
    objects._object_store.cache_clear()
    yield server
    get_settings.cache_clear()
    objects._object_store.cache_clear()
