"""Workday's web services: SOAP requests with a WS-Security UsernameToken, and RaaS reports with
HTTP Basic auth, through the same timeouts, retries, TLS settings and request log as every API.

Plain XML (the standard library's ElementTree) rather than zeep: Get_Workers needs one request
shape and a few paths out of the answer; zeep would need the tenant's WSDL at run time (one more
request, one more thing to fail) and brings requests-based transport with retries and timeouts of its
own, where this keeps the HTTP layer's. SOAP forbids a DTD in a message, so an answer with one is
refused before it is parsed (no entity expansion can be smuggled in).

What an answer becomes:

    200, XML ............................. the SOAP Body's first child, namespaces stripped
    200, not XML / cut off ............... tried again (bounded), then FetchError
    500 with a SOAP Fault ................ FetchError naming the fault code (authenticationError:
                                           the user or password; never the fault's text, it can
                                           quote the request's values)
    429, 503 ............................. waited out as Retry-After says (else backoff)
    other 5xx, network error ............. backoff with jitter, then again (bounded)
    401, 403 ............................. FetchError: the user or password (RaaS)
    other 4xx, 3xx ....................... FetchError

The password is read from the environment for each request and never kept, logged or shown.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit

import httpx

from schemas.settings import Settings
from schemas.workday import WorkdayConfig
from workers.http.client import http_options
from workers.http.errors import FetchError, error_code
from workers.http.retry import Retry, retry_after, transport_failure, with_retries

T = TypeVar("T")

SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
PASSWORD_TEXT = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0#PasswordText"  # noqa: S105 -- a URI
WD = "urn:com.workday/bsvc"


def local(tag: str) -> str:
    return tag.rpartition("}")[2]


def strip_namespaces(root: ET.Element) -> ET.Element:
    """Tags and attribute names without their namespace (``wd:type`` -> ``type``), so mapping
    paths read as Workday's documentation names them."""
    for el in root.iter():
        el.tag = local(el.tag)
        if el.attrib:
            el.attrib = {local(k): v for k, v in el.attrib.items()}
    return root


def envelope(user: str, password: str, body: ET.Element) -> bytes:
    env = ET.Element(f"{{{SOAP_ENV}}}Envelope")
    header = ET.SubElement(env, f"{{{SOAP_ENV}}}Header")
    security = ET.SubElement(header, f"{{{WSSE}}}Security", {f"{{{SOAP_ENV}}}mustUnderstand": "1"})
    token = ET.SubElement(security, f"{{{WSSE}}}UsernameToken")
    ET.SubElement(token, f"{{{WSSE}}}Username").text = user
    ET.SubElement(token, f"{{{WSSE}}}Password", {"Type": PASSWORD_TEXT}).text = password
    ET.SubElement(env, f"{{{SOAP_ENV}}}Body").append(body)
    data: bytes = ET.tostring(env, encoding="utf-8", xml_declaration=True)
    return data


def _xml(content: bytes) -> ET.Element:
    if b"<!DOCTYPE" in content or b"<!ENTITY" in content:
        raise FetchError("the answer holds a DTD, which a SOAP message never does; it was not read")
    try:
        return strip_namespaces(ET.fromstring(content))  # noqa: S314 -- no DTD, checked above
    except ET.ParseError:
        raise Retry("an answer that did not parse as XML (cut off or not XML)") from None


class SoapFault(FetchError):
    """A SOAP Fault other than a refused user: its code and, for a validation error, the path of the
    request element Workday refused (``/Manage_Skills_Request[1]/.../Worker_Reference[1]``)."""

    def __init__(self, sentence: str, code: str, xpath: str) -> None:
        super().__init__(sentence)
        self.code, self.xpath = code, xpath


def _fault(root: ET.Element) -> tuple[str, str] | None:
    """The fault code of a SOAP Fault (``Client.authenticationError``) and the path of the element a
    validation error names (namespace prefixes dropped), or None for no fault."""
    body = root.find("Body")
    fault = body.find("Fault") if body is not None else None
    if fault is None:
        return None
    xpath = fault.findtext("detail/Validation_Fault/Validation_Error/Xpath") or ""
    plain = "/".join(step.rpartition(":")[2] for step in xpath.split("/"))
    return error_code((fault.findtext("faultcode") or "").rpartition(":")[2]), plain


class WorkdayClient:
    """One connection's requests to its Workday tenant (``with WorkdayClient(...) as client``)."""

    def __init__(self, name: str, config: WorkdayConfig, settings: Settings) -> None:
        self.name, self.config, self.settings = name, config, settings
        try:
            options = http_options(config, name)
        except OSError:
            raise FetchError(f"{name}: the CA bundle {config.ca_bundle} cannot be read: fix ca_bundle") from None
        self._http = httpx.Client(**options)
        self.requests = 0

    def __enter__(self) -> WorkdayClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self._http.close()

    def _password(self) -> str:
        secret = os.environ.get(self.config.password_env)
        if not secret:
            raise FetchError(
                f"{self.name}: the environment variable {self.config.password_env} (password_env) is not set for "
                "feedsync: set it where feedsync runs (e.g. /etc/feedsync/env)"
            )
        return secret

    def soap(self, service: str, body: ET.Element) -> ET.Element:
        """The answer's first Body element (namespaces stripped) to ``body`` sent to ``service``."""
        url = self.config.service_url(service)
        describe = f"{self.name}: {local(body.tag)} {urlsplit(url).path}"

        def attempt() -> ET.Element:
            data = envelope(self.config.user, self._password(), body)
            headers = {"Content-Type": "text/xml; charset=utf-8", "SOAPAction": '""'}
            response = self._send(lambda: self._http.post(url, content=data, headers=headers), describe)
            if response.status_code != 500:  # Workday sends its faults as 500; anything else by its status
                self._check(response, describe)
            root = _xml(response.content) if response.content.lstrip().startswith(b"<") else None
            fault = _fault(root) if root is not None else None
            if fault is not None:
                raise self._fault_error(describe, *fault)
            self._check(response, describe)
            if root is None:
                raise Retry("an answer that was not XML")
            answer = root.find("Body/*")
            if answer is None:
                raise FetchError(f"{describe} answered a SOAP message with an empty Body; nothing was imported")
            return answer

        return with_retries(attempt, self.config, describe)

    def get_json(self, url: str) -> Any:
        """A RaaS report's JSON, with HTTP Basic auth (``user@tenant`` and the password)."""
        describe = f"{self.name}: GET {urlsplit(url).path}"

        def attempt() -> Any:
            auth = httpx.BasicAuth(self.config.user, self._password())
            response = self._send(
                lambda: self._http.get(url, auth=auth, headers={"Accept": "application/json"}), describe
            )
            self._check(response, describe)
            try:
                return response.json()
            except ValueError:
                raise Retry("a report that did not parse as JSON (cut off or not JSON)") from None

        return with_retries(attempt, self.config, describe)

    def _send(self, send: Callable[[], httpx.Response], describe: str) -> httpx.Response:
        self.requests += 1
        try:
            return send()
        except httpx.TransportError as exc:
            raise transport_failure(exc, describe, urlsplit(self.config.base_url).hostname) from None

    def _fault_error(self, describe: str, code: str, xpath: str) -> FetchError:
        if code.endswith("authenticationError"):
            return FetchError(
                f"{self.name}: Workday refused the user {self.config.user} or its password (SOAP fault {code}): check "
                f"username and the password in {self.config.password_env}"
            )
        return SoapFault(
            f"{describe} answered a SOAP fault ({code}): check the connection's [connections.workday] settings, "
            "the mapping's paths and the Integration System User's permissions",
            code,
            xpath,
        )

    def _check(self, response: httpx.Response, describe: str) -> None:
        status = response.status_code
        if 200 <= status < 300:
            return
        if status in (429, 503):
            raise Retry(f"HTTP {status}", retry_after(response))
        if status >= 500:
            raise Retry(f"HTTP {status}")
        if status in (401, 403):
            raise FetchError(
                f"{self.name}: Workday refused the user {self.config.user} or its password (HTTP {status}): check "
                f"username and the password in {self.config.password_env}; nothing was imported"
            )
        if 300 <= status < 400:
            raise FetchError(f"{describe} was redirected (HTTP {status}): set base_url to the tenant's services host")
        raise FetchError(f"{describe} was refused (HTTP {status}): check base_url, tenant and version")
