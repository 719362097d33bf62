"""A console form read from the request's stream, within a limit, its CSRF token checked first.

Starlette's ``request.form()`` reads the whole body before the endpoint may look at anything in
it, so a forged or oversized post was received in full before it was refused. Here:

- a body larger than its limit is refused before it is read whole: at once when its
  Content-Length says so, else as soon as the bytes counted pass the limit;
- the token is checked as soon as it is read: a urlencoded form is small (``FORM_MAX``); a
  multipart form carries it as its first part (the console's forms place it before any file), so
  a missing or wrong token is refused before a byte of any file part is taken;
- a file part's bytes go, a chunk at a time, to the file the caller opens for it (an upload's
  staged file in the drop folder): never more than one chunk of the stream is held in memory.

python-multipart's parser reports parts through synchronous callbacks; they only queue what they
saw, and the queue is handled (awaiting the guard, writing in a thread) after each chunk.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, BinaryIO, Protocol
from urllib.parse import parse_qsl

import anyio
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.datastructures import FormData, UploadFile
from starlette.requests import Request

if TYPE_CHECKING:
    from python_multipart.multipart import MultipartCallbacks

#: A form without files, whole: tokens, dates, numbers and ids take far less.
FORM_MAX = 1 << 20
#: One field of a multipart form.
FIELD_MAX = 64 << 10
#: Fields and files of one form.
PARTS_MAX = 1000

#: Told the token the form carries (None: none where it must be); raises to refuse the form.
Guard = Callable[[str | None], Awaitable[None]]


class TooLarge(Exception):
    """The body is larger than ``limit`` bytes; it was not read whole."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"larger than {limit} bytes")
        self.limit = limit


class Unreadable(Exception):
    """Not a form any page of the console sends (a broken multipart body, an oversized field)."""


class Files(Protocol):
    """Where an upload's file parts go."""

    async def open(self, filename: str) -> BinaryIO:
        """A file for the part named ``filename`` (raise to refuse it before its bytes are read)."""

    async def finish(self, out: BinaryIO) -> None:
        """The part ended: ``out`` holds all of it."""


def declared_too_large(request: Request, limit: int) -> bool:
    length = request.headers.get("content-length", "")
    return length.isdigit() and int(length) > limit


async def read(request: Request, guard: Guard, *, limit: int, files: Files | None = None) -> FormData:
    """The form's fields, once ``guard`` accepted its token; file parts go to ``files`` (without
    it the form is held to ``FORM_MAX`` and a file part's bytes are dropped)."""
    cap = limit if files is not None else min(limit, FORM_MAX)
    if declared_too_large(request, cap):
        raise TooLarge(cap)
    kind, params = parse_options_header(request.headers.get("content-type"))
    if kind == b"multipart/form-data":
        return await _Multipart(guard, cap, files).read(request, params.get(b"boundary", b""))
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > min(cap, FORM_MAX):
            raise TooLarge(min(cap, FORM_MAX))
    try:
        fields = (
            parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True, max_num_fields=PARTS_MAX)
            if kind == b"application/x-www-form-urlencoded"
            else []
        )
    except ValueError:
        raise Unreadable("too many fields") from None
    form = FormData([(k, v) for k, v in fields])
    token = form.get("csrf")
    await guard(token if isinstance(token, str) else None)
    return form


class _Multipart:
    def __init__(self, guard: Guard, cap: int, files: Files | None) -> None:
        self.guard = guard
        self.cap = cap
        self.files = files
        self.guarded = False
        self.parts = 0
        self.fields: list[tuple[str, str | UploadFile]] = []
        # What the parser's callbacks saw in the last chunk, handled in order after it.
        self.events: list[tuple[str, bytes]] = []
        self.header = bytearray()  # a header's name and value may each span two chunks
        self.header_value = bytearray()
        self.headers: dict[bytes, bytes] = {}
        # The part being read: its name, and a field's value or the file its bytes go to.
        self.name = ""
        self.value: bytearray | None = None
        self.out: BinaryIO | None = None
        self.pending = bytearray()

    def callbacks(self) -> MultipartCallbacks:
        def on_header_field(data: bytes, start: int, end: int) -> None:
            self.header += data[start:end]
            if len(self.header) > FIELD_MAX:
                raise Unreadable("a header larger than any the console's forms send")

        def on_header_value(data: bytes, start: int, end: int) -> None:
            self.events.append(("value", data[start:end]))

        def on_header_end() -> None:
            self.events.append(("header", bytes(self.header)))
            self.header.clear()

        def on_part_data(data: bytes, start: int, end: int) -> None:
            self.events.append(("data", data[start:end]))

        return {
            "on_part_begin": lambda: self.events.append(("begin", b"")),
            "on_header_field": on_header_field,
            "on_header_value": on_header_value,
            "on_header_end": on_header_end,
            "on_headers_finished": lambda: self.events.append(("headers", b"")),
            "on_part_data": on_part_data,
            "on_part_end": lambda: self.events.append(("end", b"")),
        }

    async def read(self, request: Request, boundary: bytes) -> FormData:
        if not boundary:
            raise Unreadable("no boundary")
        parser = MultipartParser(boundary, self.callbacks())
        seen = 0
        try:
            async for chunk in request.stream():
                seen += len(chunk)
                if seen > self.cap:
                    raise TooLarge(self.cap)
                try:
                    parser.write(chunk)
                except FormParserError:
                    raise Unreadable("a broken multipart body") from None
                await self._handle()
            parser.finalize()
            if not self.guarded:
                await self._check(None)
            if self.value is not None or self.out is not None:
                raise Unreadable("the body ends inside a part")
        finally:
            if self.out is not None:
                self.out.close()  # refused or cut off mid-part: the caller removes the file
        return FormData(self.fields)

    async def _check(self, token: str | None) -> None:
        self.guarded = True
        await self.guard(token)

    async def _handle(self) -> None:
        events, self.events = self.events, []
        for kind, data in events:
            if kind == "begin":
                self.headers = {}
                self.parts += 1
                if self.parts > PARTS_MAX:
                    raise Unreadable("too many parts")
            elif kind == "value":
                self.header_value += data
                if len(self.header_value) > FIELD_MAX:
                    raise Unreadable("a header larger than any the console's forms send")
            elif kind == "header":
                self.headers[data.lower()] = bytes(self.header_value)
                self.header_value.clear()
            elif kind == "headers":
                await self._begin()
            elif kind == "data":
                self._take(data)
            elif kind == "end":
                await self._end()
        await self._flush()

    async def _begin(self) -> None:
        _, options = parse_options_header(self.headers.get(b"content-disposition", b""))
        self.name = options.get(b"name", b"").decode("utf-8", "replace")
        filename = options.get(b"filename")
        if not self.guarded and (filename is not None or self.name != "csrf"):
            await self._check(None)  # the token must come first: this form has none
        if filename is None:
            self.value = bytearray()
        elif filename and self.files is not None:
            self.out = await self.files.open(filename.decode("utf-8", "replace"))
        # else: a file input left empty, or a file sent to a form that takes none: its bytes are dropped

    def _take(self, data: bytes) -> None:
        if self.value is not None:
            self.value += data
            if len(self.value) > FIELD_MAX:
                raise Unreadable("a field larger than any the console's forms send")
        elif self.out is not None:
            self.pending += data

    async def _flush(self) -> None:
        if self.out is not None and self.pending:
            data, self.pending = bytes(self.pending), bytearray()
            await anyio.to_thread.run_sync(self.out.write, data)

    async def _end(self) -> None:
        if self.value is not None:
            text = self.value.decode("utf-8", "replace")
            self.value = None
            self.fields.append((self.name, text))
            if not self.guarded:
                await self._check(text)  # the first part, and it is the token
        elif self.out is not None:
            await self._flush()
            out, self.out = self.out, None
            assert self.files is not None
            await self.files.finish(out)
