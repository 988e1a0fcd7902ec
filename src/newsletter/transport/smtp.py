"""Opening SMTP connections to the configured relay (aiosmtplib), with TLS and authentication.

One place decides how we connect: implicit TLS, required STARTTLS or (explicitly) none;
certificates verified; RFC 5321 timeouts. A login is tried once: a
refused password is never tried again by another method. Failures that make the relay unusable
raise `DeliveryError`; a refused recipient is reported as data by the caller's send.
"""

from __future__ import annotations

import ssl

import aiosmtplib

from ..config import SmtpSettings
from ..errors import DeliveryError
from ..texts import N_, Text

__all__ = ["open_connection", "send_bytes"]


async def open_connection(settings: SmtpSettings, *, local_hostname: str | None = None) -> aiosmtplib.SMTP:
    """A connected, authenticated client. Raises DeliveryError saying what failed and what to do."""
    client = aiosmtplib.SMTP(
        hostname=settings.host,
        port=settings.port,
        use_tls=settings.tls == "implicit",
        start_tls=False,
        timeout=settings.timeout,
        local_hostname=local_hostname,
    )
    where = f"{settings.host}:{settings.port}"
    try:
        await client.connect()
        if settings.tls == "starttls":
            await client.ehlo()  # the extensions are known only after EHLO
            if not client.supports_extension("starttls"):
                await client.quit()
                raise DeliveryError(Text.of(N_("the relay %(relay)s does not offer STARTTLS, which this configuration "
                                               "requires; use smtps:// or, on a trusted network only, add "
                                               "?starttls=off to smtp_url"), relay=where))
            await client.starttls()
        if settings.username:
            await _login(client, settings.username, settings.password or "")
        if client.is_ehlo_or_helo_needed:  # the extensions (PIPELINING, SMTPUTF8) are known after EHLO
            try:
                await client.ehlo()
            except aiosmtplib.SMTPHeloError:
                await client.helo()
        if settings.eight_bit and not client.supports_extension("8bitmime"):
            await client.quit()
            raise DeliveryError(Text.of(N_("the relay %(relay)s does not accept 8-bit mail (it does not offer "
                                           "8BITMIME), which eight_bit_mime = true needs; set eight_bit_mime = false "
                                           "for this relay"), relay=where))
    except DeliveryError:
        raise
    except ssl.SSLCertVerificationError as exc:
        client.close()
        raise DeliveryError(_unverified(where, exc)) from None
    except aiosmtplib.SMTPAuthenticationError as exc:
        client.close()
        raise DeliveryError(
            Text.of(N_("the relay %(relay)s refused the login for %(username)s (%(reply)s); check "
                       "NEWSLETTER_SMTP_PASSWORD"), relay=where, username=repr(settings.username),
                    reply=f"{exc.code} {exc.message.strip()}"),
            code=exc.code,
        ) from None
    except (aiosmtplib.SMTPConnectError, aiosmtplib.SMTPServerDisconnected, aiosmtplib.SMTPTimeoutError, OSError) as exc:
        client.close()
        if isinstance(exc.__cause__ or exc.__context__, ssl.SSLCertVerificationError):
            raise DeliveryError(_unverified(where, exc.__cause__ or exc.__context__)) from None
        raise DeliveryError(Text.of(N_("cannot reach the relay %(relay)s: %(error)s; is it running?"), relay=where,
                                    error=str(exc))) from None
    except aiosmtplib.SMTPResponseException as exc:
        client.close()
        raise DeliveryError(Text.of(N_("the relay %(relay)s answered %(reply)s"), relay=where,
                                    reply=f"{exc.code} {exc.message.strip()}"), code=exc.code) from None
    return client


async def _login(client: aiosmtplib.SMTP, username: str, password: str) -> None:
    """Log in once, with the first method both sides know (aiosmtplib's order: CRAM-MD5,
    PLAIN, LOGIN). A refused password is not tried again with the next method, as
    `aiosmtplib.SMTP.login` would: each refusal counts towards a relay's brute-force ban. Only
    a method the relay advertised but then said it does not know (504) moves on to the next.

    Raises aiosmtplib.SMTPAuthenticationError, or DeliveryError when no method fits."""
    if client.is_ehlo_or_helo_needed:
        await client.ehlo()
    methods = client.supported_auth_methods
    if not methods:
        client.close()
        offered = " ".join(client.server_auth_methods) or Text(N_("is not offered"))
        raise DeliveryError(Text.of(N_("the relay %(relay)s offers no login method we know (AUTH %(offered)s); check "
                                       "smtp_url (a relay may offer AUTH only after STARTTLS)"),
                                    relay=f"{client.hostname}:{client.port}", offered=offered), code=504)
    for method in methods:
        try:
            await getattr(client, f"auth_{method.replace('-', '')}")(username, password)
            return
        except aiosmtplib.SMTPAuthenticationError as exc:
            if exc.code != 504 or method == methods[-1]:
                raise


def _unverified(where: str, exc: BaseException) -> Text:
    reason = getattr(exc, "verify_message", None) or str(exc)
    return Text.of(N_("the relay %(relay)s presented a TLS certificate that cannot be verified (%(reason)s); check "
                      "the host name in smtp_url, or if the relay uses a private CA, point SSL_CERT_FILE at it"),
                   relay=where, reason=reason)


async def send_bytes(settings: SmtpSettings, sender: str, recipients: list[str], data: bytes) -> None:
    """Deliver one finished message (bytes as they go on the wire) on its own connection.

    Raises DeliveryError if the relay cannot be used or refuses the message.
    """
    client = await open_connection(settings)
    try:
        errors, _reply = await client.sendmail(sender, recipients, data)
        if errors:
            detail = "; ".join(f"{rcpt}: {resp.code} {resp.message}" for rcpt, resp in errors.items())
            raise DeliveryError(Text.of(N_("the relay refused: %(detail)s"), detail=detail))
    except aiosmtplib.SMTPRecipientsRefused as exc:
        detail = "; ".join(f"{e.recipient}: {e.code} {e.message}" for e in exc.recipients)
        raise DeliveryError(Text.of(N_("the relay refused the recipient: %(detail)s"), detail=detail)) from None
    except aiosmtplib.SMTPResponseException as exc:
        raise DeliveryError(Text.of(N_("the relay answered %(reply)s"), reply=f"{exc.code} {exc.message.strip()}"),
                            code=exc.code) from None
    except (aiosmtplib.SMTPServerDisconnected, aiosmtplib.SMTPTimeoutError, OSError) as exc:
        raise DeliveryError(Text.of(N_("the relay dropped the connection: %(error)s"), error=str(exc))) from None
    finally:
        try:
            await client.quit()
        except (aiosmtplib.SMTPException, OSError):
            client.close()
