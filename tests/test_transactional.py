"""One-off mail (confirmations): headers survive the trip through a real SMTP server intact."""

from __future__ import annotations

import asyncio

from newsletter.mail.compose import RenderedMail
from newsletter.mail.message import MailKind, MailSkeleton, Recipient
from newsletter.transport.smtp import send_bytes

# Long enough to be folded into several encoded-words: Python's default folder puts the
# spaces between them, where decoders drop them (found by search; the default policy fails it).
SUBJECT = ("اليوم المراجعة المجتمع المحكمة بشأن جمعية الأطراف المجتمع جمعية المدني بشأن الدورة "
           "المجتمع المجتمع تعاون العامة")


def test_long_arabic_subject_keeps_its_spaces_and_language(config, smtp_server):
    mail = RenderedMail("ar", SUBJECT, "نص", "<p>نص</p>")
    skeleton = MailSkeleton(config, mail, kind=MailKind.CONFIRMATION)
    data = skeleton.render(Recipient("layla@example.org", "ليلى حداد", "<one-off@example.org>"),
                           date="Mon, 23 Nov 2026 00:00:00 +0000")
    asyncio.run(send_bytes(config.smtp, config.from_address, ["layla@example.org"], data))
    [received] = smtp_server.to("layla@example.org")
    assert str(received["Subject"]) == SUBJECT
    assert received["Content-Language"] == "ar"
    assert received["To"].addresses[0].display_name == "ليلى حداد"
    assert received.get_body(("plain",)).get_content().strip() == "نص"
