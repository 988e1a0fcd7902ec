"""DKIM: generating the key pair, the DNS record to publish, and signing finished messages.

`generate_key` makes an RSA 2048 key pair with `cryptography`, writes the private key (PEM,
mode 0600, never overwritten) and returns the TXT record for `<selector>._domainkey.<domain>`.
`sign` signs with dkimpy, relaxed/relaxed, with `h=` covering the headers a receiver (and
RFC 8058) cares about; `signer_from_config` gives the sending engine a bytes -> bytes callable,
or None when DKIM is not configured.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import dkim as dkimpy
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from ..config import Config
from ..errors import DkimError

__all__ = [
    "SIGNED_HEADERS",
    "DkimKey",
    "generate_key",
    "dns_record",
    "dns_name",
    "zone_record",
    "sign",
    "signer_from_config",
]

#: Headers the signature covers. A header listed but absent is signed as absent, so it cannot
#: be added later without breaking the signature (RFC 6376 §5.4); From is required.
SIGNED_HEADERS: tuple[str, ...] = (
    "From", "To", "Subject", "Date", "Message-ID",
    "List-Id", "List-Unsubscribe", "List-Unsubscribe-Post",
)
KEY_BITS = 2048
_LABEL = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")


@dataclass(frozen=True)
class DkimKey:
    """A generated key: where the private key went, and the DNS record to publish."""

    selector: str
    domain: str
    private_key_path: Path
    public_key_path: Path
    #: `<selector>._domainkey.<domain>`
    dns_name: str
    #: The TXT record's value: `v=DKIM1; k=rsa; p=…`
    dns_value: str


def _check_label(selector: str, domain: str) -> None:
    if not all(_LABEL.match(part) for part in selector.split(".")):
        raise DkimError(f"the selector {selector!r} must be DNS labels (letters, digits, hyphens)")
    if not domain or not all(_LABEL.match(part) for part in domain.rstrip(".").split(".")):
        raise DkimError(f"{domain!r} is not a domain name")


def dns_name(selector: str, domain: str) -> str:
    """Where the public key is published: `<selector>._domainkey.<domain>`."""
    return f"{selector}._domainkey.{domain.rstrip('.')}"


def dns_record(public_key_pem: bytes) -> str:
    """The TXT value for a PEM public key: `v=DKIM1; k=rsa; p=<base64 DER>`."""
    body = b"".join(line for line in public_key_pem.splitlines() if line and not line.startswith(b"-----"))
    return f"v=DKIM1; k=rsa; p={body.decode('ascii')}"


def zone_record(name: str, value: str) -> str:
    """A zone-file line for a TXT record, `value` split into quoted strings of at most 255
    characters as DNS requires (a receiver joins them back without spaces)."""
    chunks = [value[i:i + 255] for i in range(0, len(value), 255)] or [""]
    quoted = " ".join(f'"{chunk}"' for chunk in chunks)
    return f"{name}. IN TXT ( {quoted} )"


def generate_key(selector: str, domain: str, folder: Path) -> DkimKey:
    """Write `<selector>.private` (PEM, mode 0600) and `<selector>.public` in `folder`.

    Returns the key's DNS record. Raises DkimError when the selector or domain is malformed,
    when a key of that name exists already (keys are never overwritten: mail signed with it
    would stop verifying), or when the folder cannot be written.
    """
    _check_label(selector, domain)
    folder = Path(folder)
    private_path = folder / f"{selector}.private"
    public_path = folder / f"{selector}.public"
    if private_path.exists():
        raise DkimError(f"{private_path} exists already; choose another selector or remove it first",
                        path=str(private_path))
    key = rsa.generate_private_key(public_exponent=65537, key_size=KEY_BITS)
    private_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                    serialization.NoEncryption())
    public_pem = key.public_key().public_bytes(serialization.Encoding.PEM,
                                               serialization.PublicFormat.SubjectPublicKeyInfo)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(private_pem)
        public_path.write_bytes(public_pem)
    except OSError as exc:
        raise DkimError(f"cannot write the key to {folder}: {exc.strerror or exc}", path=str(private_path)) from None
    return DkimKey(selector, domain, private_path, public_path, dns_name(selector, domain), dns_record(public_pem))


def sign(message_bytes: bytes, selector: str, domain: str, private_key: bytes) -> bytes:
    """`message_bytes` with a DKIM-Signature header prepended (rsa-sha256, relaxed/relaxed).

    Raises DkimError when the key cannot be used or the message has no From header.
    """
    try:
        signature = dkimpy.sign(
            message_bytes,
            selector.encode("ascii"),
            domain.encode("ascii"),
            private_key,
            canonicalize=(b"relaxed", b"relaxed"),
            include_headers=[h.encode("ascii") for h in SIGNED_HEADERS],
        )
    except dkimpy.DKIMException as exc:
        raise DkimError(f"DKIM signing failed: {exc}") from None
    return signature + message_bytes


def signer_from_config(config: Config) -> Callable[[bytes], bytes] | None:
    """A callable that signs a finished message, or None when dkim_selector is not set.

    Reads the key once, now. Raises DkimError when DKIM is half configured or the key file
    cannot be read; `dkim_domain` defaults to the From address's domain.
    """
    if not config.dkim_selector:
        return None
    domain = config.dkim_domain or config.from_address.rpartition("@")[2]
    if not config.dkim_key_file:
        raise DkimError("dkim_selector is set but dkim_key_file is not; set both (or neither)")
    _check_label(config.dkim_selector, domain)
    path = Path(config.dkim_key_file)
    try:
        private_key = path.read_bytes()
    except OSError as exc:
        raise DkimError(f"cannot read the DKIM key {path}: {exc.strerror or exc}; "
                        "`newsletter dkim keygen` writes one", path=str(path)) from None
    selector = config.dkim_selector

    def sign_message(message_bytes: bytes) -> bytes:
        return sign(message_bytes, selector, domain, private_key)

    return sign_message
