"""How fast `newsletter bounces` reads a Maildir: N subscribers, one report each, on SQLite.

Each message is its own transaction (so a crash loses nothing), which bounds the rate.

    .venv/bin/python bench/bounce_reader.py [N]
"""

from __future__ import annotations

import mailbox
import shutil
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from newsletter.bounces.mailboxes import open_source
from newsletter.bounces.rules import BounceRules, process_mailbox
from newsletter.mail.verp import verp_address
from newsletter.people import consent
from newsletter.people.consent import ConsentContext
from newsletter.people.lists import create_list
from newsletter.statuses import Channel
from newsletter.store import Campaign, open_store

FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "bounces"
SECRET = b"bench-secret-0123456789abcdef"
KINDS = ["postfix-dsn.eml", "gmail-551.eml", "delayed.eml", "arf-complaint.eml", "exim-bounce.eml",
         "postfix-mailbox-full.eml", "auto-reply.eml"]


def main(n: int) -> None:
    folder = Path(tempfile.mkdtemp(prefix="bounce-bench-"))
    try:
        store = open_store(f"sqlite:///{folder}/bench.db")
        store.upgrade()
        now = datetime(2026, 11, 23, 9, 0, tzinfo=timezone.utc)
        with store.session() as session:
            mailing_list = create_list(session, "asp-daily", "ASP daily summaries", now=now)
            campaign = Campaign(slug="asp23-day-3", list_id=mailing_list.id, created_at=now)
            session.add(campaign)
            session.flush()
            ctx = ConsentContext(channel=Channel.IMPORT, source="bench")
            people = []
            for i in range(n):
                due = consent.subscribe(session, f"reader{i}@example.net", "", "en", ["asp-daily"], ctx,
                                        now=now, languages=("en",))
                people.append((f"reader{i}@example.net", due.subscriber_key))
            campaign_id = campaign.id
        box = mailbox.Maildir(folder / "bounces", create=True)
        templates = [(FIXTURES / name).read_bytes() for name in KINDS]
        for i, (email, key) in enumerate(people):
            verp = verp_address(SECRET, "bounces@news.example.org", campaign_id, key)
            box.add(templates[i % len(templates)].replace(b"@@VERP@@", verp.encode())
                    .replace(b"@@RCPT@@", email.encode()).replace(b"@@MSGID@@", f"bench.{i}@example.org".encode()))
        source = open_source(str(folder / "bounces"))
        started = time.perf_counter()
        summary = process_mailbox(store, source, secret=SECRET, bounce_address="bounces@news.example.org",
                                  rules=BounceRules(), clock=lambda: now)
        elapsed = time.perf_counter() - started
        print(f"{n} reports in {elapsed:.2f} s: {n / elapsed:.0f} per second "
              f"({summary.processed} processed, {summary.unparsed} unparsed, {summary.by_kind})")
    finally:
        shutil.rmtree(folder)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1000)
