"""The HTTP client layer's promises that hold for every source: no secret or token in a log line,
TLS always verified (a CA bundle adds trust, nothing turns it off)."""

from __future__ import annotations

import datetime
import ipaddress
import logging
import ssl
from collections.abc import Iterator, MutableMapping
from pathlib import Path
from typing import Any

import pytest
import structlog
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from structlog.testing import capture_logs

from schemas.settings import Settings
from tests.api_vendors import GraphVendor
from tests.apidata import people, read, spec
from tests.apiservers import CLIENT_SECRET, Served
from workers.http import FetchError, client, retry, tokens
from workers.sources import fetch, pull


@pytest.fixture
def api_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("GRAPH_CLIENT_SECRET", CLIENT_SECRET)
    return Settings(drop_dir=tmp_path / "drop", store_dir=tmp_path / "store", keys_dir=tmp_path / "keys")


@pytest.fixture
def logs(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> Iterator[list[MutableMapping[str, Any]]]:
    caplog.set_level(logging.DEBUG)  # every stdlib logger too (httpx, httpcore), at its most talkative
    with capture_logs() as captured:
        for module in (client, retry, tokens, pull):
            monkeypatch.setattr(module, "log", structlog.get_logger(module.__name__))
        yield captured


def test_no_secret_token_or_paging_token_reaches_a_log_line_or_an_error(
    api_settings: Settings, tmp_path: Path, logs: list[MutableMapping[str, Any]], caplog: pytest.LogCaptureFixture
) -> None:
    vendor = GraphVendor(people=people(250))
    vendor.expire_tokens_after(pages=1)  # a refresh: a second token request and a 401 on the way
    vendor.fail("skiptoken", 429, times=1, headers={"Retry-After": "0"})
    with Served(vendor) as served:
        fetch(spec(served), api_settings, tmp_path / "users.csv")
        vendor.fail("skiptoken", 500, times=10)
        with pytest.raises(FetchError) as raised:
            fetch(spec(served, max_retries=1), api_settings, tmp_path / "again.csv")

    text = "\n".join([repr(logs), caplog.text, str(raised.value)])
    requests = [e for e in logs if e["event"] == "api request"]
    # What is logged: each request's path and status, the token requests too.
    assert {(e["path"], e["status"]) for e in requests} >= {
        ("/v1.0/users", 200),
        ("/v1.0/users", 401),
        ("/v1.0/users", 429),
        ("/v1.0/users", 500),
        (f"/{vendor.seen[0].path.split('/')[1]}/oauth2/v2.0/token", 200),
    }
    retried = [(e["request"], e["reason"]) for e in logs if e["event"] == "api retry"]
    assert retried == [("entra-users: GET /v1.0/users", "HTTP 429"), ("entra-users: GET /v1.0/users", "HTTP 500")]
    assert vendor.issued == 3
    assert CLIENT_SECRET not in text
    assert "tok-" not in text, "no access token"
    assert "skiptoken" not in text, "no query string: paging tokens stay out of the logs"
    assert "person" not in text and "Given" not in text, "no record value"


def _certificates(tmp_path: Path) -> tuple[Path, ssl.SSLContext]:
    """A CA of our own (its PEM file) and a server context with a certificate it signed for 127.0.0.1."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "feedsync test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )  # key_cert_sign and crl_sign
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    ca_file, cert_file, key_file = tmp_path / "ca.pem", tmp_path / "server.pem", tmp_path / "server.key"
    ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_file.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    return ca_file, context


def test_tls_is_verified_against_the_ca_bundle_given(api_settings: Settings, tmp_path: Path) -> None:
    ca_file, context = _certificates(tmp_path)
    with Served(GraphVendor(people=people(5)), tls=context) as served:
        result = fetch(spec(served, ca_bundle=str(ca_file)), api_settings, tmp_path / "users.csv")

    assert served.url.startswith("https://")
    assert len(read(result.path)) == 6


def test_a_certificate_that_cannot_be_verified_stops_at_once_and_says_to_set_ca_bundle(
    api_settings: Settings, tmp_path: Path
) -> None:
    _, context = _certificates(tmp_path)
    vendor = GraphVendor(people=people(5))
    with Served(vendor, tls=context) as served, pytest.raises(FetchError) as raised:
        fetch(spec(served), api_settings, tmp_path / "users.csv")

    assert "the TLS certificate of 127.0.0.1 could not be verified" in str(raised.value)
    assert "set ca_bundle" in str(raised.value)
    assert vendor.seen == [], "nothing, not even the secret, was sent to a server that could not be verified"
    assert not (tmp_path / "users.csv").exists()


@pytest.mark.parametrize(
    ("content", "reason"), [(None, "No such file or directory"), (b"junk", "no PEM certificate in it")]
)
def test_a_ca_bundle_that_cannot_be_read_is_one_sentence_naming_it(
    api_settings: Settings, tmp_path: Path, content: bytes | None, reason: str
) -> None:
    bundle = tmp_path / "corp-ca.pem"
    if content is not None:
        bundle.write_bytes(content)
    vendor = GraphVendor(people=people(5))
    with Served(vendor) as served, pytest.raises(FetchError) as raised:
        fetch(spec(served, ca_bundle=str(bundle)), api_settings, tmp_path / "users.csv")

    assert str(raised.value) == f"entra-users: the CA bundle {bundle} cannot be read ({reason}): fix ca_bundle"
    assert vendor.seen == []
