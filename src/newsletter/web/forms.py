"""Reading what a visitor posts: forms and JSON, bounded and strict.

Every POST handler reads its body through `read_fields` (forms) or `read_json`:

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

from starlette.datastructures import Headers
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import Request

__all__ = ["BadRequest", "MAX_FORM", "MAX_JSON", "MAX_FIELDS", "read_body", "read_fields", "read_json", "is_json"]

#: The largest form any of our pages sends is well under 4 KiB (a name of 200 characters, a
#: few lists); 64 KiB leaves room for every language and still bounds what a robot costs us.
MAX_FORM = 64 * 1024
MAX_JSON = 16 * 1024
MAX_FIELDS = 100


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


async def read_fields(request: Request, *, limit: int = MAX_FORM, max_fields: int = MAX_FIELDS) -> dict[str, Any]:
    """The posted form's fields (the last value of each name) and, under "lists", every value
    of `lists`. Raises BadRequest (see the module docstring) and ClientDisconnect."""
    # No Content-Type at all is read as a plain form: a mail provider's one-click POST must not
    # fail on a missing header.
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower() or "application/x-www-form-urlencoded"
    if kind not in ("application/x-www-form-urlencoded", "multipart/form-data"):
        raise BadRequest(415, "send the form as application/x-www-form-urlencoded or multipart/form-data")
    body = await read_body(request, limit)
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest(400, "the form is not valid UTF-8") from None
    if kind == "multipart/form-data":
        parser = MultiPartParser(Headers(raw=[(b"content-type", request.headers["content-type"].encode("latin-1"))]),
                                 _once(body), max_files=0, max_fields=max_fields)
        try:
            pairs = [(k, v) for k, v in (await parser.parse()).multi_items() if isinstance(v, str)]
        except MultiPartException as exc:
            raise BadRequest(400, f"the form could not be read: {exc.message}") from None
    else:
        try:
            pairs = parse_qsl(text, keep_blank_values=True, encoding="utf-8", errors="strict",
                              max_num_fields=max_fields)
        except UnicodeDecodeError:
            raise BadRequest(400, "the form is not valid UTF-8") from None
        except ValueError:
            raise BadRequest(400, f"the form has more than {max_fields} fields") from None
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
