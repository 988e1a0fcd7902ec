"""Per-message costs outside the SMTP exchange, each on its own: claims and link making.

    python bench/claim.py                      # claims on SQLite (a 20,000-row ledger), then links
    python bench/claim.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/bench_claim
    PYTHONPATH=/path/to/other/tree/src python bench/claim.py   # the same figures for another tree

`claims`: the ledger of a 20,000-recipient campaign claimed 200 rows at a time, as the sender
claims, each batch then marked sent (not counted): CPU µs per claimed row. `links`: what the
sender makes for each message before the skeleton fill (its Message-ID, the unsubscribe and
preferences links), then the same with the fill: CPU µs per message, the best of five runs.
Under `valgrind --tool=callgrind` (`--only links -n 2000 --repeat 1`) the instruction counts
do not move with the machine's load.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import datetime, timedelta, timezone

import send as bench_send  # bench/send.py: the send benchmark's store and issue
from sqlalchemy import update

from newsletter.mail import headers
from newsletter.mail.message import Recipient
from newsletter.sending import campaigns
from newsletter.sending.messages import Links, build_skeletons
from newsletter.store import Campaign, OutboxRow, ledger, open_store
from newsletter.store.ledger import ClaimedRow


def claims(url: str, n: int) -> float:
    bench_send.build_store(url, n)
    store = open_store(url)
    now = datetime.now(timezone.utc)
    with store.session() as session:
        campaign_id = campaigns.get_campaign(session, bench_send.SLUG).id
    cpu, rows = 0.0, 0
    while True:
        c = time.process_time()
        with store.session() as session:
            campaign = session.get(Campaign, campaign_id)
            got, skipped = ledger.claim_batch(session, campaign, "bench", limit=200, now=now,
                                              stale_before=now - timedelta(minutes=30))
        cpu += time.process_time() - c
        if not got and not skipped:
            break
        rows += len(got) + skipped
        with store.session() as session:
            session.execute(update(OutboxRow).where(OutboxRow.id.in_([r.id for r in got]))
                            .values(status="sent", claimed_by=None))
    store.dispose()
    return cpu / rows * 1e6


def links(n: int, repeat: int) -> tuple[float, float]:
    config = bench_send.config_for("sqlite://", 25)
    skeletons = build_skeletons(config, bench_send.issue(), "asp-daily", "ASP daily summaries", bench_send.SLUG)
    secret = b"s" * 32
    made = Links(config, "asp-daily", now=datetime.now(timezone.utc), secret=secret)
    if hasattr(headers, "MessageIds"):
        message_id = headers.MessageIds(secret, bench_send.SLUG, "example.org")
    else:  # a tree from before #17.5
        def message_id(subscriber_id: int) -> str:
            return headers.message_id_for(secret, bench_send.SLUG, subscriber_id, "example.org")
    rows = [ClaimedRow(i, i, f"person{i:07d}@example{i % 50}.org", f"Person {i}", f"k{i:012d}",
                       ("en", "fr", "es", "ar")[i % 4], 0) for i in range(n)]
    date = "Mon, 23 Nov 2026 09:00:00 +0000"

    def run(fill: bool) -> float:
        c = time.process_time()
        for r in rows:
            mid = message_id(r.subscriber_id)
            unsub, prefs, mailto = made.for_row(r)
            if fill:
                skeletons[r.language].render(Recipient(r.email, r.name, mid, unsub, prefs, mailto), date=date)
        return (time.process_time() - c) / len(rows) * 1e6

    return min(run(False) for _ in range(repeat)), min(run(True) for _ in range(repeat))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=20_000, help="rows (claims) or messages (links)")
    parser.add_argument("--database-url", default=None, help="default: a SQLite file in a temporary folder")
    parser.add_argument("--only", choices=("claims", "links"), default=None)
    parser.add_argument("--repeat", type=int, default=5, help="runs of `links` (the best is shown)")
    args = parser.parse_args()
    if args.only in (None, "claims"):
        with tempfile.TemporaryDirectory() as tmp:
            url = args.database_url or f"sqlite:///{tmp}/store.db"
            print(f"claims ({url.partition(':')[0]}): {claims(url, args.n):.1f} µs CPU a claimed row")
    if args.only in (None, "links"):
        ids_links, with_fill = links(args.n, args.repeat)
        print(f"links: Message-ID and both links {ids_links:.1f} µs a message; with the skeleton fill {with_fill:.1f} µs")


if __name__ == "__main__":
    main()
