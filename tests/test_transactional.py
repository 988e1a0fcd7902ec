"""One-off mail (confirmations): headers survive the trip through a real SMTP server intact."""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone

from newsletter.mail.compose import RenderedMail
from newsletter.mail.message import build_transactional
from newsletter.transport.smtp import send_one

# Long enough to be folded into several encoded-words: Python's default folder puts the
# spaces between them, where decoders drop them (found by search; the default policy fails it).
SUBJECT = ("اليوم المراجعة المجتمع المحكمة بشأن جمعية الأطراف المجتمع جمعية المدني بشأن الدورة "
           "المجتمع المجتمع تعاون العامة")


def test_long_arabic_subject_keeps_its_spaces_and_language(config, smtp_server):
    mail = RenderedMail("ar", SUBJECT, "نص", "<p>نص</p>")
    message = build_transactional(config, mail, "layla@example.org", "ليلى حداد",
                                  now=datetime(2026, 11, 23, tzinfo=timezone.utc))
    asyncio.run(send_one(config.smtp, message))
    [received] = smtp_server.to("layla@example.org")
    assert str(received["Subject"]) == SUBJECT
    assert received["Content-Language"] == "ar"
    assert received["To"].addresses[0].display_name == "ليلى حداد"
    assert received.get_body(("plain",)).get_content().strip() == "نص"
