"""A sender in a process of its own, for the crash and multi-worker tests.

Usage: python sender_process.py DATABASE_URL SMTP_PORT CAMPAIGN_SLUG CONCURRENCY [LEDGER_CHUNK]
Prints the result line "status sent_now" when it ends by itself.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from test_send import variants  # noqa: E402

from newsletter.config import Config  # noqa: E402
from newsletter.sending.messages import build_skeletons  # noqa: E402
from newsletter.sending.sender import Sender, SendOptions  # noqa: E402
from newsletter.store import open_store  # noqa: E402


def main() -> None:
    url, port, slug, concurrency = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
    config = Config(database_url=url, base_url="https://news.example.org",
                    smtp_url=f"smtp://127.0.0.1:{port}?starttls=off&timeout=30",
                    secret_key="test-secret-key-0123456789abcdef",
                    **({"ledger_chunk": int(sys.argv[5])} if len(sys.argv) > 5 else {}))
    store = open_store(url)
    skeletons = build_skeletons(config, variants(), "asp-daily", "ASP daily summaries", slug)
    options = SendOptions(concurrency=concurrency, batch_size=100, idle_poll=0.2)
    result = asyncio.run(Sender(store, config, slug, skeletons, options=options).run())
    print(result.status.value, result.sent_now, flush=True)


if __name__ == "__main__":
    main()
