"""`newsletter demo`: the whole product, for real, on one machine, in about a minute.

In a folder of its own it creates the embedded store, starts the local SMTP catcher and the
visitor pages on free loopback ports, signs people up through the real HTTP sign-up endpoint,
confirms them through the links in the caught confirmation mails (showing the page, then
pressing its button, as a browser would), sends an example daily summary through the real
sending engine, unsubscribes one person with the RFC 8058 one-click POST, and reports.

The folder is marked as the demo's; a run removes only a folder carrying that mark, so it
never touches anything else and can be run again.
"""

from __future__ import annotations

import email
import email.utils
import json
import mailbox
import re
import secrets
import shutil
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from email import policy
from html.parser import HTMLParser
from http.cookiejar import CookieJar
from pathlib import Path

import uvicorn

from .app import create_app
from .config import Config, load_config
from .errors import NewsletterError
from .installation import Newsletter
from .mail.preview import write_preview
from .people.lists import create_list
from .resources import shipped_path
from .sending.launch import launch, list_readers, prepare_send
from .sending.options import SendOptions
from .store import open_store
from .transport.sink import Sink

__all__ = ["DemoError", "DemoResult", "PEOPLE", "EXAMPLES", "run_demo"]

MARK = ".newsletter-demo"
EXAMPLES = shipped_path("examples")
LIST_SLUG = "asp-daily"

#: (name, address, language): invented people, addresses at the reserved example domains.
PEOPLE: tuple[tuple[str, str, str], ...] = (
    ("Grace Mensah", "grace.mensah@example.org", "en"),
    ("Daniel Whitaker", "daniel.whitaker@example.net", "en"),
    ("Priya Raman", "priya.raman@example.org", "en"),
    ("Tomasz Nowak", "tomasz.nowak@example.com", "en"),
    ("Abena Owusu", "abena.owusu@example.net", "en"),
    ("Liam O'Connor", "liam.oconnor@example.org", "en"),
    ("Mei Lin Tan", "meilin.tan@example.com", "en"),
    ("Samuel Kiptoo", "samuel.kiptoo@example.org", "en"),
    ("Hannah Berg", "hannah.berg@example.net", "en"),
    ("Aminata Diallo", "aminata.diallo@example.org", "fr"),
    ("Julien Lefèvre", "julien.lefevre@example.net", "fr"),
    ("Chantal Mukendi", "chantal.mukendi@example.com", "fr"),
    ("Moussa Traoré", "moussa.traore@example.org", "fr"),
    ("Élodie Garnier", "elodie.garnier@example.net", "fr"),
    ("Koffi Agbeko", "koffi.agbeko@example.org", "fr"),
    ("Nadia Benali", "nadia.benali@example.com", "fr"),
    ("Pierre-Yves Morel", "pierre-yves.morel@example.org", "fr"),
    ("Awa Ndiaye", "awa.ndiaye@example.net", "fr"),
    ("Lucía Fernández", "lucia.fernandez@example.org", "es"),
    ("Mateo Rojas", "mateo.rojas@example.net", "es"),
    ("Valentina Quispe", "valentina.quispe@example.com", "es"),
    ("Andrés Gutiérrez", "andres.gutierrez@example.org", "es"),
    ("Camila Duarte", "camila.duarte@example.net", "es"),
    ("Joaquín Herrera", "joaquin.herrera@example.org", "es"),
    ("Sofía Paredes", "sofia.paredes@example.com", "es"),
    ("Diego Salinas", "diego.salinas@example.org", "es"),
    ("Layla Haddad", "layla.haddad@example.org", "ar"),
    ("يوسف العلي", "youssef.alali@example.net", "ar"),
    ("مريم الخطيب", "mariam.khatib@example.com", "ar"),
    ("Omar Farouk", "omar.farouk@example.org", "ar"),
    ("سلمى منصور", "salma.mansour@example.net", "ar"),
    ("كريم ناصر", "karim.nasser@example.org", "ar"),
    ("Huda Saleh", "huda.saleh@example.com", "ar"),
    ("رامي عيسى", "rami.issa@example.org", "ar"),
    ("نور الهدى", "nour.alhuda@example.net", "ar"),
    ("Tariq Aziz Rahman", "tariq.rahman@example.org", "ar"),
)


class DemoError(NewsletterError):
    """The demo could not run (its folder is someone else's, a step did not work)."""


@dataclass
class DemoResult:
    """What the demo did, for the report."""

    folder: Path
    web_url: str
    signed_up: int = 0
    confirmation_mails: int = 0
    confirmed: int = 0
    campaign: str = ""
    sent_by_language: Counter = field(default_factory=Counter)
    subjects: dict[str, str] = field(default_factory=dict)
    unsubscribed: str = ""
    outcome: dict[str, int] = field(default_factory=dict)
    eml_dir: Path | None = None
    html_dir: Path | None = None


# -- the folder ---------------------------------------------------------------------------

def prepare_folder(folder: Path) -> None:
    """Empty the demo folder (only if it is the demo's) and mark it. Raises DemoError."""
    if folder.exists():
        if not (folder / MARK).exists():
            if any(folder.iterdir()):
                raise DemoError(f"{folder} exists and is not a demo folder; choose another with --dir")
        else:
            shutil.rmtree(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / MARK).write_text("made by `newsletter demo`; removed and remade by each run\n")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def demo_config(folder: Path, web_port: int, smtp_port: int) -> Config:
    """A configuration for the demo, also written to folder/newsletter.toml for later commands."""
    secret = secrets.token_urlsafe(48)
    key_file = folder / "secret.key"
    key_file.write_text(secret + "\n")
    key_file.chmod(0o600)
    toml = (
        "# Written by `newsletter demo`.\n"
        'database_url = "sqlite:///subscribers/newsletter.db"\n'
        f'base_url = "http://127.0.0.1:{web_port}"\n'
        f'smtp_url = "smtp://127.0.0.1:{smtp_port}?starttls=off"\n'
        'secret_key_file = "secret.key"\n'
        'sink_maildir = "mail"\n'
        f"sink_port = {smtp_port}\n"
        "# Everyone signs up from 127.0.0.1 here, so the per-IP and per-address limits are off.\n"
        "signup_per_ip_per_hour = 0\n"
        "signup_per_address_per_hour = 0\n"
    )
    (folder / "newsletter.toml").write_text(toml)
    return load_config(folder / "newsletter.toml", environ={})


# -- a small browser ------------------------------------------------------------------------

class _Forms(HTMLParser):
    """Collects each <form>'s method, action and hidden inputs."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "form":
            self.forms.append({"method": (a.get("method") or "get").lower(), "action": a.get("action") or "",
                               "fields": {}})
        elif tag == "input" and self.forms and a.get("type") == "hidden" and a.get("name"):
            self.forms[-1]["fields"][a["name"]] = a.get("value") or ""


class Browser:
    """Fetches pages and presses a page's first POST button, with cookies, as a person would."""

    def __init__(self, language: str = "en"):
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(CookieJar()))
        self.language = language

    def request(self, url: str, data: bytes | None = None, headers: dict | None = None) -> tuple[int, str]:
        req = urllib.request.Request(url, data=data, headers={"Accept-Language": self.language,
                                                              "User-Agent": "newsletter-demo", **(headers or {})})
        try:
            with self.opener.open(req, timeout=30) as resp:
                return resp.status, resp.read().decode("utf-8", "replace")
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode("utf-8", "replace")

    def press_button(self, url: str) -> int:
        """GET the page, then submit its first POST form; returns the POST's status."""
        status, page = self.request(url)
        if status != 200:
            return status
        parser = _Forms()
        parser.feed(page)
        form = next((f for f in parser.forms if f["method"] == "post"), None)
        if form is None:
            raise DemoError(f"the page at {url} has no button to press")
        target = urllib.parse.urljoin(url, form["action"]) if form["action"] else url
        status, _ = self.request(target, urllib.parse.urlencode(form["fields"]).encode(),
                                 {"Content-Type": "application/x-www-form-urlencoded"})
        return status


# -- servers -------------------------------------------------------------------------------

class WebServer:
    """uvicorn serving the visitor pages in a thread, on loopback."""

    def __init__(self, newsletter: Newsletter, port: int):
        self.server = uvicorn.Server(uvicorn.Config(create_app(newsletter), host="127.0.0.1", port=port,
                                                    log_level="warning", lifespan="off"))
        self.thread = threading.Thread(target=self.server.run, name="demo-web", daemon=True)

    def __enter__(self) -> "WebServer":
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise DemoError("the visitor pages did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def _caught(maildir: Path) -> list[email.message.EmailMessage]:
    box = mailbox.Maildir(str(maildir), factory=None, create=True)
    return [email.message_from_bytes(box.get_bytes(key), policy=policy.default) for key in box.keys()]


def _wait_for_mail(maildir: Path, predicate: Callable, count: int, timeout: float = 60) -> list:
    deadline = time.monotonic() + timeout
    while True:
        found = [m for m in _caught(maildir) if predicate(m)]
        if len(found) >= count or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def _link(message: email.message.EmailMessage, path: str) -> str | None:
    text = message.get_body(("plain",)).get_content()
    match = re.search(r"(https?://\S+/" + path + r"/\S+)", text)
    return match.group(1) if match else None


# -- the run -------------------------------------------------------------------------------

def _sign_up_everyone(web_url: str, say: Callable[[str], None]) -> int:
    """POST each person to /subscribe as JSON, the way the organisation's website would."""
    accepted = 0
    for name, address, language in PEOPLE:
        body = json.dumps({"email": address, "name": name, "language": language, "lists": [LIST_SLUG],
                           "source": "newsletter-demo"}).encode()
        status, _ = Browser(language).request(f"{web_url}/subscribe", body, {"Content-Type": "application/json"})
        if status != 200:
            raise DemoError(f"the sign-up of {address} was answered {status}")
        accepted += 1
    say(f"signed up {accepted} people through POST {web_url}/subscribe")
    return accepted


def _confirm_everyone(maildir: Path, expected: int, say: Callable[[str], None]) -> tuple[int, int]:
    """Open each caught confirmation mail's link and press Confirm. Returns (mails, confirmed)."""
    mails = _wait_for_mail(maildir, lambda m: _link(m, "confirm") is not None, expected)
    confirmed = 0
    for message in mails:
        language = str(message.get("Content-Language", "en"))
        if Browser(language).press_button(_link(message, "confirm")) == 200:
            confirmed += 1
    say(f"caught {len(mails)} confirmation mails; pressed Confirm on each: {confirmed} confirmed")
    return len(mails), confirmed


def _send_issue(newsletter: Newsletter, sources: list[Path], result: DemoResult, html_dir: Path,
                say: Callable[[str], None]) -> None:
    """Send the issue the way `newsletter send` does (`sending.launch`): render once per
    language, plan the audience along the list's fallback chain, lint, start, send."""
    prepared = prepare_send(newsletter, sources)
    if prepared.lint.errors:
        raise DemoError("the example issue does not pass lint: " + "; ".join(map(str, prepared.lint.errors)))
    write_preview(newsletter.config, prepared.slug, prepared.plan.list_slug, prepared.rendered, html_dir,
                  languages=sorted({lang for *_, lang in PEOPLE}), fallback_chain=prepared.plan.fallback_chain,
                  now=newsletter.clock())
    outcome = launch(newsletter, prepared, SendOptions(concurrency=4))
    result.campaign = prepared.slug
    result.subjects = {lang: mail.subject for lang, mail in prepared.rendered.items()}
    result.outcome = dict(outcome.counts._asdict())
    counts = ", ".join(f"{n} {state}" for state, n in result.outcome.items() if n or state == "sent")
    say(f"sent {prepared.slug} through the sending engine: {counts}")


def _unsubscribe_one(maildir: Path, campaign: str, say: Callable[[str], None]) -> str:
    """Press the mail client's unsubscribe button: the RFC 8058 one-click POST."""
    mails = [m for m in _caught(maildir) if m.get("List-Unsubscribe-Post")]
    if not mails:
        raise DemoError("no campaign mail with List-Unsubscribe-Post was caught")
    message = sorted(mails, key=lambda m: str(m["To"]))[0]
    url = re.search(r"<(https?://[^>]+)>", str(message["List-Unsubscribe"])).group(1)
    status, _ = Browser().request(url, b"List-Unsubscribe=One-Click",
                                  {"Content-Type": "application/x-www-form-urlencoded"})
    if status != 200:
        raise DemoError(f"the one-click unsubscribe POST was answered {status}")
    who = email.utils.parseaddr(str(message["To"]))[1]
    say(f"{who} pressed their mail client's Unsubscribe button (one-click POST): 200")
    return who


def run_demo(folder: Path, *, say: Callable[[str], None] = lambda _line: None) -> DemoResult:
    """Run the whole product once in `folder` (see the module docstring). Raises DemoError."""
    folder = folder.resolve()
    prepare_folder(folder)
    web_port, smtp_port = _free_port(), _free_port()
    config = demo_config(folder, web_port, smtp_port)
    store = open_store(config.database_url)
    store.upgrade()
    newsletter = Newsletter(config, store)
    with store.session() as session:
        create_list(session, LIST_SLUG, "ASP daily summaries",
                    description="A summary of each day of the Assembly of States Parties session.",
                    languages=["en", "fr", "es", "ar"], now=newsletter.clock())
    maildir = Path(config.sink_maildir)
    result = DemoResult(folder=folder, web_url=config.base_url)
    say(f"store: {config.database_url}; catcher: smtp://127.0.0.1:{smtp_port} -> {maildir}; "
        f"pages: {config.base_url}")
    with Sink(maildir, port=smtp_port), WebServer(newsletter, web_port):
        result.signed_up = _sign_up_everyone(config.base_url, say)
        result.confirmation_mails, result.confirmed = _confirm_everyone(maildir, result.signed_up, say)
        sources = sorted((EXAMPLES / "asp23").glob("day-3.*.md"))
        result.html_dir = folder / "preview"
        _send_issue(newsletter, sources, result, result.html_dir, say)
        campaign_mails = _wait_for_mail(maildir, lambda m: m.get("List-Unsubscribe-Post") is not None,
                                        result.confirmed, timeout=30)
        for message in campaign_mails:
            result.sent_by_language[str(message.get("Content-Language", "?"))] += 1
        result.unsubscribed = _unsubscribe_one(maildir, result.campaign, say)
    result.eml_dir = folder / "eml"
    _export_eml(maildir, result.eml_dir)
    active = sum(list_readers(newsletter, LIST_SLUG).languages.values())
    if active != result.confirmed - 1:
        raise DemoError(f"expected {result.confirmed - 1} active subscribers after one unsubscribe, found {active}")
    store.dispose()
    return result


def _export_eml(maildir: Path, out: Path) -> None:
    """Each caught message as a numbered .eml file, for any mail program to open."""
    out.mkdir(parents=True, exist_ok=True)
    box = mailbox.Maildir(str(maildir), factory=None, create=False)
    for n, key in enumerate(sorted(box.keys()), start=1):
        (out / f"{n:03d}.eml").write_bytes(box.get_bytes(key))
