"""Where bounce and feedback mail is read from: a Maildir folder, an mbox file, or IMAP over TLS.

Every source offers the same four operations — list the waiting messages, read one, move one
aside to `processed` or `unparsed`, close — so the bounce reader does not care which it is.
Nothing is ever deleted except by moving: a message leaves the inbox only once a copy is in
the target folder.

- Maildir: the folders are Maildir++ sub-folders (`.processed`, `.unparsed`);
- mbox: sibling mbox files `<file>.processed` and `<file>.unparsed`; the mbox is locked while open;
- IMAP: `imaps://user@host[:port]/INBOX` (implicit TLS, port 993) or `imap://…` (STARTTLS
  required, port 143; never in clear), password from an environment variable; the folders
  are `INBOX<delimiter>processed` and `INBOX<delimiter>unparsed`, created when missing; messages
  are moved with UID MOVE where the server has it, else UID COPY then \\Deleted and EXPUNGE.
"""

from __future__ import annotations

import imaplib
import mailbox
import os
import re
import ssl
from pathlib import Path
from typing import Protocol
from urllib.parse import unquote, urlsplit

from ..errors import MailboxError

__all__ = ["PROCESSED", "UNPARSED", "BounceSource", "MaildirSource", "MboxSource", "ImapSource",
           "open_source", "PASSWORD_ENV"]

PROCESSED = "processed"
UNPARSED = "unparsed"
#: Where the IMAP password is read from, unless the caller names another variable.
PASSWORD_ENV = "NEWSLETTER_BOUNCE_PASSWORD"


class BounceSource(Protocol):
    """A mailbox of bounce and feedback mail."""

    name: str

    def keys(self) -> list[str]:
        """The messages waiting in the inbox (not in processed or unparsed)."""

    def read(self, key: str) -> bytes:
        """The raw bytes of one message."""

    def move(self, key: str, folder: str) -> None:
        """Put the message in `folder` (PROCESSED or UNPARSED), then take it out of the inbox."""

    def close(self) -> None:
        """Flush and release the mailbox."""


class MaildirSource:
    """A Maildir folder (new/ and cur/), e.g. what Postfix or `newsletter sink` writes."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.name = str(self.path)
        if not (self.path / "cur").is_dir() or not (self.path / "new").is_dir():
            raise MailboxError(self.name, "is not a Maildir (it has no cur/ and new/ folders)")
        self._box = mailbox.Maildir(self.path, factory=None, create=False)
        self._folders: dict[str, mailbox.Maildir] = {}

    def keys(self) -> list[str]:
        return sorted(self._box.keys())

    def read(self, key: str) -> bytes:
        return self._box.get_bytes(key)

    def _folder(self, name: str) -> mailbox.Maildir:
        if name not in self._folders:
            existing = self._box.list_folders()
            self._folders[name] = self._box.get_folder(name) if name in existing else self._box.add_folder(name)
        return self._folders[name]

    def move(self, key: str, folder: str) -> None:
        self._folder(folder).add(self._box.get_bytes(key))
        self._box.remove(key)

    def close(self) -> None:
        pass


class MboxSource:
    """An mbox file, locked while open; moved messages go to sibling mbox files."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.name = str(self.path)
        if not self.path.is_file():
            raise MailboxError(self.name, "does not exist or is not a file")
        self._box = mailbox.mbox(self.path, factory=None, create=False)
        try:
            self._box.lock()
        except mailbox.ExternalClashError as exc:
            raise MailboxError(self.name, f"is locked by another program ({exc})") from None
        self._removed = False

    def keys(self) -> list[str]:
        return [str(k) for k in sorted(self._box.keys())]

    def read(self, key: str) -> bytes:
        return self._box.get_bytes(int(key))

    def move(self, key: str, folder: str) -> None:
        target = mailbox.mbox(self.path.with_name(f"{self.path.name}.{folder}"), create=True)
        target.lock()
        try:
            target.add(self._box.get_message(int(key)))
            target.flush()
        finally:
            target.unlock()
            target.close()
        self._box.discard(int(key))
        self._removed = True

    def close(self) -> None:
        try:
            if self._removed:
                self._box.flush()
        finally:
            self._box.unlock()
            self._box.close()


class ImapSource:
    """An IMAP mailbox over TLS — implicit (port 993) or STARTTLS (required) — certificate verified."""

    def __init__(self, host: str, user: str, password: str, folder: str = "INBOX", *, port: int | None = None,
                 starttls: bool = False, ssl_context: ssl.SSLContext | None = None, timeout: float = 60.0):
        port = port or (143 if starttls else 993)
        self.name = f"{'imap' if starttls else 'imaps'}://{user}@{host}:{port}/{folder}"
        self.folder = folder
        context = ssl_context or ssl.create_default_context()
        try:
            if starttls:
                self._imap = imaplib.IMAP4(host, port, timeout=timeout)
                if "STARTTLS" not in self._imap.capabilities:
                    self._imap.shutdown()
                    raise MailboxError(self.name, "the server does not offer STARTTLS; use imaps:// instead")
                self._imap.starttls(ssl_context=context)
            else:
                self._imap = imaplib.IMAP4_SSL(host, port, ssl_context=context, timeout=timeout)
            self._imap.login(user, password)
            status, _ = self._imap.select(self._quote(folder))
        except ssl.SSLCertVerificationError as exc:
            raise MailboxError(self.name, f"its TLS certificate cannot be verified ({exc.verify_message}); "
                                          "if the server uses a private CA, point SSL_CERT_FILE at it") from None
        except (OSError, imaplib.IMAP4.error) as exc:
            raise MailboxError(self.name, f"cannot open it: {exc}") from None
        if status != "OK":
            raise MailboxError(self.name, f"the server has no folder {folder!r}")
        self._delimiter = self._hierarchy_delimiter()
        self._created: set[str] = set()
        self._can_move = "MOVE" in self._capabilities()
        self._deleted = False

    def _capabilities(self) -> set[str]:
        """What the server offers now: servers may announce more after login than before it."""
        status, data = self._imap.capability()
        if status == "OK" and data and data[0]:
            return set(data[0].decode("ascii", "replace").upper().split())
        return set(self._imap.capabilities)

    @staticmethod
    def _quote(name: str) -> str:
        return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'

    def _hierarchy_delimiter(self) -> str:
        status, data = self._imap.list('""', self._quote(self.folder))
        if status == "OK" and data and data[0]:
            match = re.match(rb'\([^)]*\) "(.)"', data[0])
            if match:
                return match.group(1).decode()
        return "/"

    def _check(self, what: str, result: tuple) -> list:
        status, data = result
        if status != "OK":
            raise MailboxError(self.name, f"{what} failed: {data!r}")
        return data

    def keys(self) -> list[str]:
        data = self._check("UID SEARCH", self._imap.uid("SEARCH", None, "UNDELETED"))
        return [uid.decode() for uid in (data[0] or b"").split()]

    def read(self, key: str) -> bytes:
        data = self._check("UID FETCH", self._imap.uid("FETCH", key, "(BODY.PEEK[])"))
        for item in data:
            if isinstance(item, tuple):
                return item[1]
        raise MailboxError(self.name, f"message UID {key} has vanished")

    def move(self, key: str, folder: str) -> None:
        target = f"{self.folder}{self._delimiter}{folder}"
        if target not in self._created:
            self._imap.create(self._quote(target))  # "already exists" is fine
            self._created.add(target)
        if self._can_move:
            self._check("UID MOVE", self._imap.uid("MOVE", key, self._quote(target)))
        else:
            self._check("UID COPY", self._imap.uid("COPY", key, self._quote(target)))
            self._check("UID STORE", self._imap.uid("STORE", key, "+FLAGS.SILENT", r"(\Deleted)"))
            self._deleted = True

    def close(self) -> None:
        try:
            if self._deleted:
                self._imap.expunge()
            self._imap.logout()
        except (OSError, imaplib.IMAP4.error):
            pass


def open_source(spec: str, *, environ: dict[str, str] | None = None, password_env: str = PASSWORD_ENV) -> BounceSource:
    """Open `spec`: imaps://user@host[:port]/FOLDER, imap://… (STARTTLS), a Maildir folder, or an mbox file.

    Raises MailboxError when it does not exist, is neither kind, or (IMAP) the password
    variable is unset or the server refuses.
    """
    if "://" in spec:
        parts = urlsplit(spec)
        if parts.scheme not in ("imaps", "imap"):
            raise MailboxError(spec, "give imaps://user@host/INBOX (implicit TLS) or imap://user@host/INBOX (STARTTLS)")
        if not parts.hostname or not parts.username:
            raise MailboxError(spec, "write it as imaps://user@host/INBOX")
        env = os.environ if environ is None else environ
        password = env.get(password_env)
        if not password:
            raise MailboxError(spec, f"set the password in the environment variable {password_env}")
        folder = unquote(parts.path.lstrip("/")) or "INBOX"
        return ImapSource(parts.hostname, unquote(parts.username), password, folder, port=parts.port,
                          starttls=parts.scheme == "imap")
    path = Path(spec)
    if path.is_dir():
        return MaildirSource(path)
    if path.is_file():
        return MboxSource(path)
    raise MailboxError(spec, "does not exist (give a Maildir folder, an mbox file or imaps://user@host/INBOX)")
