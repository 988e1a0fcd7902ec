"""Reading what a visitor posts: forms and JSON, bounded and strict.

Every POST handler reads its body through `read_fields` (forms) or `read_json`; the staff
workspace reads its forms and uploads through `read_form`, the API its JSON through `read_body`:

- the body is read up to a limit (`MAX_FORM`, `MAX_JSON`), from `Content-Length` when it says
  more (413 before a byte is read) or while streaming (413 as soon as it goes past);
- a form is `application/x-www-form-urlencoded` or `multipart/form-data` without files, and
  must be valid UTF-8: a byte that is not is refused (400), never turned into U+FFFD or
  guessed as Latin-1 and stored;
- JSON must be UTF-8, an object, and not nested deeper than Python's parser goes (400).

Each refusal is a `BadRequest` carrying its status and reason; the app renders it in one place
(a page, or JSON for a JSON request). A client that leaves mid-body raises Starlette's
`ClientDisconnect`, which the app logs in one line.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qsl

from starlette.datastructures import FormData, Headers
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import Request

__all__ = ["BadRequest", "MAX_FORM", "MAX_JSON", "MAX_FIELDS", "MAX_STAFF_FORM", "MAX_UPLOAD", "read_body",
           "read_fields", "read_form", "read_json", "is_json"]

#: The largest form any of our pages sends is well under 4 KiB (a name of 200 characters, a
#: few lists); 64 KiB leaves room for every language and still bounds what a robot costs us.
MAX_FORM = 64 * 1024
MAX_JSON = 16 * 1024
MAX_FIELDS = 100
#: A staff form (an issue's text in one language, its front matter) is read after the session is
#: checked: 1 MiB. A form that sends files (an import, content files) up to 32 MiB.
MAX_STAFF_FORM = 1024 * 1024
MAX_UPLOAD = 32 * 1024 * 1024


class BadRequest(Exception):
    """A body we do not read: `status` 400 (malformed), 413 (too large) or 415 (not a form)."""

    def __init__(self, status: int, reason: str):
        super().__init__(reason)
        self.status = status
        self.reason = reason


def is_json(request: Request) -> bool:
    return request.headers.get("content-type", "").split(";")[0].strip().lower() == "application/json"


async def read_body(request: Request, limit: int) -> bytes:
    """The body, at most `limit` bytes (BadRequest 413 beyond). Raises ClientDisconnect."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.strip().isdigit():
            raise BadRequest(400, "the Content-Length header is not a number")
        if int(declared) > limit:
            raise BadRequest(413, f"the request is larger than {limit // 1024} KiB")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BadRequest(413, f"the request is larger than {limit // 1024} KiB")
        chunks.append(chunk)
    return b"".join(chunks)


async def _once(body: bytes) -> AsyncIterator[bytes]:
    yield body


async def read_form(request: Request, *, limit: int = MAX_FORM, max_fields: int = MAX_FIELDS,
                    max_files: int = 0) -> FormData:
    """The posted form as Starlette's `FormData` (files as `UploadFile`, at most `max_files`),
    its body read bounded by `read_body` first. Without files the whole body must be UTF-8; with
    them, multipart's text fields are decoded by Starlette's parser. Raises BadRequest (see the
    module docstring) and ClientDisconnect."""
    # No Content-Type at all is read as a plain form: a mail provider's one-click POST must not
    # fail on a missing header.
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower() or "application/x-www-form-urlencoded"
    if kind not in ("application/x-www-form-urlencoded", "multipart/form-data"):
        raise BadRequest(415, "send the form as application/x-www-form-urlencoded or multipart/form-data")
    body = await read_body(request, limit)
    if not (max_files and kind == "multipart/form-data"):
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            raise BadRequest(400, "the form is not valid UTF-8") from None
    if kind == "multipart/form-data":
        parser = MultiPartParser(Headers(raw=[(b"content-type", request.headers["content-type"].encode("latin-1"))]),
                                 _once(body), max_files=max_files, max_fields=max_fields)
        try:
            return await parser.parse()
        except MultiPartException as exc:
            raise BadRequest(400, f"the form could not be read: {exc.message}") from None
    try:
        pairs = parse_qsl(text, keep_blank_values=True, encoding="utf-8", errors="strict", max_num_fields=max_fields)
    except UnicodeDecodeError:
        raise BadRequest(400, "the form is not valid UTF-8") from None
    except ValueError:
        raise BadRequest(400, f"the form has more than {max_fields} fields") from None
    return FormData(pairs)


async def read_fields(request: Request, *, limit: int = MAX_FORM, max_fields: int = MAX_FIELDS) -> dict[str, Any]:
    """The posted form's fields (the last value of each name) and, under "lists", every value
    of `lists`. Raises BadRequest (see the module docstring) and ClientDisconnect."""
    pairs = [(k, v) for k, v in (await read_form(request, limit=limit, max_fields=max_fields)).multi_items()
             if isinstance(v, str)]
    fields: dict[str, Any] = dict(pairs)
    fields["lists"] = [v for k, v in pairs if k == "lists"]
    return fields


async def read_json(request: Request, *, limit: int = MAX_JSON) -> dict[str, Any]:
    """The posted JSON object. Raises BadRequest (see the module docstring) and ClientDisconnect."""
    body = await read_body(request, limit)
    try:
        data = json.loads(body.decode("utf-8") or "null")
    except UnicodeDecodeError:
        raise BadRequest(400, "the JSON is not valid UTF-8") from None
    except RecursionError:
        raise BadRequest(400, "the JSON is nested too deeply") from None
    except ValueError as exc:
        raise BadRequest(400, f"the JSON could not be read: {exc}") from None
    if not isinstance(data, dict):
        raise BadRequest(400, "send a JSON object")
    return data
