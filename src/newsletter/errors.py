"""Every error the library raises on purpose.

The tree::

    NewsletterError
    ├── ConfigError               newsletter.toml or NEWSLETTER_* is wrong (`key`)
    │   ├── MissingConfigFile     the configuration file named does not exist (`path`)
    │   └── MissingSecretKey      there is no signing key (`path` of the key file)
    ├── StoreError                the database cannot be used (`detail`: the driver's first line)
    │   └── SchemaOutOfDate       the schema is missing or older than the code (`current`, `head`)
    ├── InvalidAddress(ValueError) email-validator refused an address
    ├── InvalidField(ValueError)  a name, language or list is not acceptable
    ├── UnknownList(LookupError)  no list has that slug (`known`: the lists there are, `suggestion`,
    │                             `content`: the content files whose `list:` names it)
    │   └── ListArchived          the list is archived: it takes no subscriber and no send
    ├── UnknownSubscriber(LookupError)
    │   └── SuppressedAddress     nobody has it: it was erased, or suppressed without a person (`reason`, `at`)
    ├── NotSuppressed(LookupError) a suppression to lift is not there
    ├── InvalidToken              tampered, expired, unknown or wrong-purpose link token
    ├── ImportFileError           a CSV file cannot be read at all (rows are reported, not raised)
    ├── ContentError              a content file is wrong (file, line, field)
    ├── LintFailed                an issue has lint errors and cannot be sent
    ├── MissingVariant(LookupError) no language variant along the fallback chain
    ├── DeliveryError(ConnectionError) the relay cannot be used at all (auth, TLS, refused)
    ├── InvalidVerp               a bounce's return path is not ours or was tampered with
    ├── MailboxError              a bounce mailbox cannot be opened or read
    ├── DkimError                 a DKIM key cannot be written, read or used
    ├── UnknownIssue(LookupError) the archive has no such issue
    ├── UnknownCampaign(LookupError) no campaign has that slug
    ├── CampaignStateError        the campaign cannot do that in its state (finished, cancelled, other list)
    │   ├── CampaignContentMissing  the content files a campaign was started from are gone
    │   └── CampaignContentChanged  they changed since it started: the rest would get other content
    ├── NoAudience                a send would reach nobody (nobody subscribed, or nobody new)
    ├── SegmentError(ValueError)  a segment expression cannot be read or names what is not there
    │                             (`expression`, `column`, `reason`)
    ├── UnknownSegment(LookupError) no segment has that name
    ├── ApiAccessDenied           an API token is missing, unknown or revoked (`scope` "token"), or lacks a scope
    ├── WebhookRefused            a provider's bounce webhook is not authentic or not set up (`provider`, `reason`)
    ├── UnknownSchedule(LookupError) no scheduled send has that id
    ├── ScheduleStateError        the scheduled send cannot do that in its state (fired, cancelled, taken)
    ├── LoginRefused              a workspace login failed (one message whatever was wrong)
    ├── LoginThrottled            too many failed logins for this account or address (`retry_after`)
    ├── PermissionDenied          a staff member's role does not allow the action (`action`, `role`)
    ├── UnknownStaffMember(LookupError) no workspace account has that address
    ├── StaffMemberExists         a workspace account already has that address
    ├── StaffStateError           the account cannot do that in its state (revoked, the last owner)
    ├── UnknownDraft(LookupError) no issue being written has that slug
    ├── DraftExists               an issue being written already has that slug
    ├── EditConflict              a version was saved over a revision someone else had replaced
    ├── ApprovalRequired          the two-person rule: no other sender approved these exact revisions
    ├── CatchUpUnavailable        a late translation cannot be sent to the readers who got the fallback
    ├── ArchiveError              a backup archive cannot be written, read or restored (`path`, `reason`)
    └── StoreNotEmpty             a restore would mix an archive with data already there (`counts`)

Each carries its data as attributes and a message that says what is wrong; the library never
names a command to run. The faces word the hints, each in one place: the CLI's error translator
(`cli.NewsletterGroup`) adds "run `newsletter init`" and the like, the web app shows visitors a
page of its own. Per-recipient delivery outcomes are data, not errors.
"""

from __future__ import annotations

from datetime import datetime
from difflib import get_close_matches

from .texts import N_, NP_, Text, text_of

__all__ = [
    "NewsletterError",
    "ConfigError",
    "MissingConfigFile",
    "MissingSecretKey",
    "StoreError",
    "SchemaOutOfDate",
    "InvalidAddress",
    "InvalidField",
    "UnknownList",
    "ListArchived",
    "UnknownSubscriber",
    "SuppressedAddress",
    "NotSuppressed",
    "InvalidToken",
    "ImportFileError",
    "ContentError",
    "LintFailed",
    "MissingVariant",
    "DeliveryError",
    "InvalidVerp",
    "MailboxError",
    "DkimError",
    "UnknownIssue",
    "UnknownCampaign",
    "CampaignStateError",
    "CampaignContentMissing",
    "NoAudience",
    "CampaignContentChanged",
    "SegmentError",
    "UnknownSegment",
    "ApiAccessDenied",
    "WebhookRefused",
    "UnknownSchedule",
    "ScheduleStateError",
    "LoginRefused",
    "LoginThrottled",
    "PermissionDenied",
    "UnknownStaffMember",
    "StaffMemberExists",
    "StaffStateError",
    "UnknownDraft",
    "DraftExists",
    "EditConflict",
    "ApprovalRequired",
    "CatchUpUnavailable",
    "ArchiveError",
    "StoreNotEmpty",
]


class NewsletterError(Exception):
    """Base of every error this package raises on purpose.

    `text` is the message as a catalogue msgid (marked with `N_`, `%(name)s` placeholders) and
    `values` what goes in (a value may be a `texts.Text`, translated in turn; `plural` is set for
    a message with plural forms), so that a face shows it in its reader's language
    (`workspace.pages.say`); `str(error)` is the English. A message given whole by the raiser is
    its own `text`, with no values.
    """

    text: str = ""
    values: tuple[tuple[str, object], ...] = ()
    plural: str = ""

    def __init__(self, message: str | Text = "", *args: object):
        said = text_of(message)
        self.text, self.values, self.plural = said
        super().__init__(str(said), *args)

    @property
    def said(self) -> Text:
        """The message as a `Text` (template, values and, for a counted one, its plural)."""
        return Text(self.text, self.values, self.plural)


class ConfigError(NewsletterError):
    """The configuration cannot be used; `key` names the setting when one is at fault."""

    def __init__(self, message: str | Text, key: str | None = None):
        super().__init__(message)
        self.key = key


class MissingConfigFile(ConfigError):
    """The configuration file named (by --config or NEWSLETTER_CONFIG) does not exist; or, with
    `named` False, none was named, none is where it is looked for (`path`), and the database
    has no schema: nothing has been set up here."""

    def __init__(self, path: str, named: bool = True):
        if named:
            super().__init__(Text.of(N_("the configuration file %(path)s does not exist"), path=path))
        else:
            super().__init__(Text.of(N_("no configuration file was found (%(path)s does not exist and "
                                        "NEWSLETTER_CONFIG is not set), and the database has no schema yet"),
                                     path=path))
        self.path = path
        self.named = named


class MissingSecretKey(ConfigError):
    """There is no signing key: the key file does not exist and NEWSLETTER_SECRET_KEY is not set."""

    def __init__(self, path: str):
        super().__init__(Text.of(N_("no secret key: %(path)s does not exist and NEWSLETTER_SECRET_KEY is not set"),
                                 path=path), key="secret_key")
        self.path = path


class StoreError(NewsletterError):
    """The database cannot be used as it is; `detail` is the database's own word, when it said one."""

    def __init__(self, message: str | Text, detail: str | None = None):
        super().__init__(message)
        self.detail = detail


class SchemaOutOfDate(StoreError):
    """The database schema is missing or older than this version of the code."""

    def __init__(self, current: str | None, head: str):
        self.current = current
        self.head = head
        if current is None:
            said = Text.of(N_("the database has no schema yet; this version needs revision %(head)s"), head=head)
        else:
            said = Text.of(N_("the database is at revision %(current)s; this version needs revision %(head)s"),
                           current=current, head=head)
        super().__init__(said)


class InvalidAddress(NewsletterError, ValueError):
    """An email address was refused; `reason` is email-validator's explanation."""

    def __init__(self, address: str, reason: str | Text):
        super().__init__(Text.of(N_("%(address)s is not a usable email address: %(reason)s"), address=repr(address),
                                 reason=text_of(reason)))
        self.address = address
        self.reason = str(reason)
        #: `reason` as a Text, to be shown translated (an import's rejected row keeps it).
        self.reason_said = text_of(reason)


#: The fields of the workspace's forms whose names the catalogues translate where an error names
#: them (marked here for them); any other field (a slug, a kind, a declared attribute) is named as
#: it is written.
_FIELD_NAMES = (N_("name"), N_("description"), N_("expression"), N_("language"), N_("languages"), N_("lists"),
                N_("password"), N_("current password"), N_("code"), N_("roles"), N_("time zone"), N_("ready by"),
                N_("window"), N_("consent note"), N_("reason"), N_("translations"))


class InvalidField(NewsletterError, ValueError):
    """A field other than the address holds a value we cannot accept; `reason` (English) says
    why, and may be given as a `Text` to be shown translated (the field's name too, when it is
    one of `_FIELD_NAMES`)."""

    def __init__(self, field: str, reason: str | Text):
        super().__init__(Text.of(N_("%(field)s: %(reason)s"), field=Text(field), reason=text_of(reason)))
        self.field = field
        self.reason = str(reason)
        #: `reason` as a Text, to be shown translated (an import's rejected row keeps it).
        self.reason_said = text_of(reason)


class UnknownList(NewsletterError, LookupError):
    """No mailing list has this slug. `known` holds the slugs of the lists there are (None when
    the raiser did not ask), `content` the content files whose front matter named it (empty when the caller
    named it); the message names neither, so that a visitor's page shows no private list."""

    def __init__(self, slug: str, *, known: tuple[str, ...] | None = None, content: tuple[str, ...] = ()):
        super().__init__(Text.of(N_("there is no list %(slug)s"), slug=repr(slug)))
        self.slug = slug
        self.known = None if known is None else tuple(known)
        self.content = tuple(content)

    @property
    def suggestion(self) -> str | None:
        """The known list closest to the slug, when one is close enough to be a slip of the keys."""
        close = get_close_matches(self.slug.lower(), self.known or (), n=1, cutoff=0.6)
        return close[0] if close else None

    def named_in(self, content: tuple[str, ...]) -> UnknownList:
        """The same error, said of the content files whose `list:` named the slug."""
        return UnknownList(self.slug, known=self.known, content=content)


class ListArchived(UnknownList):
    """The list is archived: it is offered to nobody, takes no new subscriber and is sent to never."""

    def __init__(self, slug: str):
        NewsletterError.__init__(self, Text.of(N_("the list %(slug)s is archived"), slug=repr(slug)))
        self.slug = slug


class UnknownSubscriber(NewsletterError, LookupError):
    """No subscriber has this address."""

    def __init__(self, address: str):
        super().__init__(Text.of(N_("nobody with the address %(address)s is in the store"), address=repr(address)))
        self.address = address


class SuppressedAddress(UnknownSubscriber):
    """Nobody has this address, and it is suppressed: erased on request (`reason` "erased"), or
    suppressed without a person behind it (bounced, imported from a suppression list…)."""

    def __init__(self, address: str, reason: str, at: datetime | str):
        when = at.strftime("%Y-%m-%d") if isinstance(at, datetime) else at
        if reason == "erased":
            said = Text.of(N_("nobody with the address %(address)s is in the store: it was erased on %(when)s; only a "
                              "hash of the address is kept, so that it is never mailed or imported again"),
                           address=repr(address), when=when)
        else:
            said = Text.of(N_("nobody with the address %(address)s is in the store: it has been suppressed "
                              "(%(reason)s) since %(when)s; only a hash of the address is kept, so that it is never "
                              "mailed or imported again"),
                           address=repr(address), reason=reason.replace("_", " "), when=when)
        NewsletterError.__init__(self, said)
        self.address = address
        self.reason = reason
        self.at = at


class NotSuppressed(NewsletterError, LookupError):
    """The address is not on the suppression list (there is nothing to lift)."""

    def __init__(self, address: str):
        super().__init__(Text.of(N_("%(address)s is not suppressed"), address=repr(address)))
        self.address = address


class InvalidToken(NewsletterError):
    """A link token is not valid for this purpose: tampered, expired, unknown or wrong-purpose.

    Deliberately one type with one message, so no caller can tell the cases apart.
    """

    def __init__(self) -> None:
        super().__init__(N_("this link is not valid (it may be incomplete or out of date)"))


class ImportFileError(NewsletterError):
    """A CSV file cannot be imported at all (unreadable, no email column)."""

    def __init__(self, path: str, reason: str | Text):
        super().__init__(Text.of(N_("%(path)s: %(reason)s"), path=path, reason=text_of(reason)))
        self.path = path
        self.reason = str(reason)
        #: `reason` as a Text, to be shown translated.
        self.reason_said = text_of(reason)


#: ContentError's messages: (with a line?, with a field?) -> template.
_CONTENT = {
    (False, False): N_("%(path)s: %(detail)s"),
    (True, False): N_("%(path)s:%(line)s: %(detail)s"),
    (False, True): N_("%(path)s: %(field)s: %(detail)s"),
    (True, True): N_("%(path)s:%(line)s: %(field)s: %(detail)s"),
}


class ContentError(NewsletterError):
    """A content file is wrong: names the file, the line and the field, and what was expected
    (`detail`, English; given as a `Text` by the content loader, shown translated)."""

    def __init__(self, path: str, message: str | Text, line: int | None = None, field: str | None = None):
        values: dict[str, object] = {"path": path, "detail": text_of(message)}
        if line is not None:
            values["line"] = line
        if field:
            values["field"] = field
        super().__init__(Text(_CONTENT[line is not None, bool(field)], tuple(values.items())))
        self.path = path
        self.line = line
        self.field = field
        self.detail = str(message)


class LintFailed(NewsletterError):
    """An issue has lint errors; `problems` lists them. Nothing was sent."""

    def __init__(self, problems: list):
        self.problems = problems
        # One line per problem, each a Text of its own: a lint problem's message is translated
        # (`mail.lint.Problem.text`, `.values`), the rest of the line is as `str(problem)` has it.
        lines = Text("\n".join(f"  - %(p{i})s" for i in range(len(problems))),
                     tuple((f"p{i}", _problem_line(problem)) for i, problem in enumerate(problems)))
        super().__init__(Text.counted(NP_("the issue has %(n)s lint error:\n%(lines)s",
                                          "the issue has %(n)s lint errors:\n%(lines)s"), len(problems), lines=lines))


def _problem_line(problem: object) -> str | Text:
    """A lint problem as `str(problem)` words it ("error: [fr] subject: …"), its message kept
    translatable when it has a message id."""
    template, values = getattr(problem, "text", ""), getattr(problem, "values", ())
    if not template:
        return str(problem)
    where = f"[{problem.language}] " if getattr(problem, "language", None) else ""
    return Text.of("%(severity)s: %(where)s%(rule)s: %(message)s", severity=Text(problem.severity.value), where=where,
                   rule=problem.rule, message=Text(template, tuple(values)))


class MissingVariant(NewsletterError, LookupError):
    """No variant of an issue exists in a subscriber's language nor along the fallback chain."""

    def __init__(self, language: str, available: tuple[str, ...], chain: tuple[str, ...]):
        self.language = language
        self.available = tuple(available)
        self.chain = tuple(chain)
        super().__init__(Text.of(
            N_("no variant for language %(language)s: the issue has %(available)s, and the fallback chain %(chain)s "
               "reaches none of them; add a variant or change the list's languages"),
            language=repr(language), available=", ".join(available) or Text(N_("none")), chain=" > ".join(chain)))


class DeliveryError(NewsletterError, ConnectionError):
    """The SMTP relay cannot be used at all (authentication, TLS, refused connection)."""

    def __init__(self, message: str | Text, code: int | None = None):
        super().__init__(message)
        self.code = code


class InvalidVerp(NewsletterError):
    """A return-path address is not one of our VERP addresses, or its signature does not verify.

    One type and one message for every case (not ours, truncated, tampered), like InvalidToken.
    """

    def __init__(self, address: str):
        super().__init__(Text.of(N_("%(address)s is not a valid VERP return path of this installation"),
                                 address=repr(address)))
        self.address = address


class MailboxError(NewsletterError):
    """A bounce mailbox (Maildir, mbox or IMAP) cannot be opened or read; `source` names it."""

    def __init__(self, source: str, reason: str | Text):
        super().__init__(Text.of(N_("bounce mailbox %(source)s: %(reason)s"), source=source, reason=text_of(reason)))
        self.source = source
        self.reason = str(reason)


class DkimError(NewsletterError):
    """A DKIM key cannot be written, read or used; `path` names the key file when one is at fault."""

    def __init__(self, message: str | Text, path: str | None = None):
        super().__init__(message)
        self.path = path


class UnknownIssue(NewsletterError, LookupError):
    """No finished campaign of a public list has this slug, so the archive has no such issue."""

    def __init__(self, list_slug: str, slug: str):
        super().__init__(Text.of(N_("the archive of %(list)s has no issue %(slug)s (only finished campaigns are "
                                    "archived)"), list=repr(list_slug), slug=repr(slug)))
        self.list_slug = list_slug
        self.slug = slug


class UnknownCampaign(NewsletterError, LookupError):
    """No campaign has this slug."""

    def __init__(self, slug: str):
        super().__init__(Text.of(N_("there is no campaign %(slug)s"), slug=repr(slug)))
        self.slug = slug


class CampaignStateError(NewsletterError):
    """The campaign cannot do what was asked in the state it is in; the message says what can
    (English; given as a `Text` by the raiser, shown translated)."""

    def __init__(self, slug: str, status: str, message: str | Text):
        super().__init__(Text.of(N_("campaign %(slug)s is %(status)s: %(reason)s"), slug=repr(slug),
                                 status=Text(status), reason=text_of(message)))
        self.slug = slug
        self.status = status


class CampaignContentMissing(CampaignStateError):
    """A campaign cannot go on: the content files it was started from (`missing`; all of them
    when it recorded none) are not there to render it from."""

    def __init__(self, slug: str, status: str, missing: tuple[str, ...]):
        self.missing = tuple(missing)
        what = Text.of(N_("its content files are not there (%(missing)s)"), missing=", ".join(self.missing)) \
            if self.missing else Text(N_("it recorded no content files"))
        super().__init__(slug, status, what)


class CampaignContentChanged(CampaignStateError):
    """A campaign cannot go on as it is: its content files changed since it started, so the
    rest of its readers would get something other than what the first ones got."""

    def __init__(self, slug: str, status: str):
        super().__init__(slug, status, Text(N_("its content files changed since it started, so the rest would "
                                               "receive something other than what was sent so far; nothing was sent")))


class NoAudience(NewsletterError):
    """A send of `slug` to `list_slug` would reach nobody: the list has no confirmed, active
    subscriber (`since` False), or everyone has already had it (`since` True). Nothing was
    started or used up."""

    def __init__(self, slug: str, list_slug: str, *, since: bool = False):
        self.slug, self.list_slug, self.since = slug, list_slug, since
        if since:
            template = N_("nobody has joined the list %(list)s since %(slug)s was sent; nothing was sent")
        else:
            template = N_("the list %(list)s has no confirmed subscriber to send %(slug)s to; nothing was sent")
        super().__init__(Text.of(template, list=repr(list_slug), slug=repr(slug)))


class SegmentError(NewsletterError, ValueError):
    """A segment expression is refused: `reason` (English; given as a `Text` by the parser, shown
    translated), at `column` (1-based) of `expression`."""

    def __init__(self, expression: str, column: int, reason: str | Text):
        super().__init__(Text.of(N_("segment expression, column %(column)s: %(reason)s"), column=column,
                                 reason=text_of(reason)))
        self.expression = expression
        self.column = column
        self.reason = str(reason)


class ApiAccessDenied(NewsletterError):
    """An API request may not do this: `scope` is "token" (no valid token) or the scope it lacks."""

    def __init__(self, scope: str):
        super().__init__(Text(N_("no valid API token was given")) if scope == "token"
                         else Text.of(N_("this API token does not have the %(scope)s scope"), scope=repr(scope)))
        self.scope = scope


class WebhookRefused(NewsletterError):
    """A bounce webhook claiming to be from `provider` is refused: `reason` (a bad signature, a
    certificate from elsewhere, the provider not set up)."""

    def __init__(self, provider: str, reason: str | Text):
        super().__init__(Text.of(N_("%(provider)s webhook refused: %(reason)s"), provider=provider,
                                 reason=text_of(reason)))
        self.provider = provider
        self.reason = str(reason)


class UnknownSegment(NewsletterError, LookupError):
    """No segment has this name."""

    def __init__(self, name: str):
        super().__init__(Text.of(N_("there is no segment %(name)s"), name=repr(name)))
        self.name = name


class UnknownSchedule(NewsletterError, LookupError):
    """No scheduled send has this id."""

    def __init__(self, schedule_id: int):
        super().__init__(Text.of(N_("there is no scheduled send %(id)s"), id=schedule_id))
        self.schedule_id = schedule_id


class ScheduleStateError(NewsletterError):
    """The scheduled send `schedule_id` cannot do what was asked in its `status`; the message says why."""

    def __init__(self, schedule_id: int, status: str, message: str | Text):
        super().__init__(Text.of(N_("scheduled send %(id)s is %(status)s: %(reason)s"), id=schedule_id,
                                 status=Text(status), reason=text_of(message)))
        self.schedule_id = schedule_id
        self.status = status


class LoginRefused(NewsletterError):
    """A workspace login failed: unknown address, wrong password or code, revoked account.

    Deliberately one type with one message, so nobody can learn which addresses have accounts.
    """

    def __init__(self) -> None:
        super().__init__(Text(N_("the address, password or code is not right")))


class LoginThrottled(NewsletterError):
    """Too many failed logins for this account or from this address; `retry_after` in seconds.

    Said alike for addresses with and without an account.
    """

    def __init__(self, retry_after: int):
        super().__init__(Text.counted(NP_("too many failed logins: try again in %(n)s minute",
                                          "too many failed logins: try again in %(n)s minutes"),
                                      max(1, retry_after // 60)))
        self.retry_after = retry_after


class PermissionDenied(NewsletterError):
    """The staff member's role does not allow `action` (for `language`, when it is about one)."""

    def __init__(self, action: str, role: str, language: str | None = None):
        if language:
            said = Text.of(N_("the role %(role)s does not allow %(action)s in %(language)s"), role=Text(role),
                           action=action, language=language)
        else:
            said = Text.of(N_("the role %(role)s does not allow %(action)s"), role=Text(role), action=action)
        super().__init__(said)
        self.action = action
        self.role = role
        self.language = language


class UnknownStaffMember(NewsletterError, LookupError):
    """No workspace account has this address."""

    def __init__(self, email: str):
        super().__init__(Text.of(N_("no workspace account has the address %(email)s"), email=repr(email)))
        self.email = email


class StaffMemberExists(NewsletterError):
    """A workspace account already has this address (invited, active or revoked)."""

    def __init__(self, email: str, status: str):
        super().__init__(Text.of(N_("a workspace account for %(email)s already exists (%(status)s)"), email=repr(email),
                                 status=Text(status)))
        self.email = email
        self.status = status


class StaffStateError(NewsletterError):
    """The account cannot do what was asked in its state; the message says why."""

    def __init__(self, email: str, message: str | Text):
        super().__init__(Text.of(N_("%(email)s: %(reason)s"), email=email, reason=text_of(message)))
        self.email = email


class UnknownDraft(NewsletterError, LookupError):
    """No issue being written (in the workspace's store) has this slug."""

    def __init__(self, slug: str):
        super().__init__(Text.of(N_("there is no issue %(slug)s being written"), slug=repr(slug)))
        self.slug = slug


class DraftExists(NewsletterError):
    """An issue being written already has this slug (slugs name campaigns, so they are unique)."""

    def __init__(self, slug: str):
        super().__init__(Text.of(N_("an issue %(slug)s already exists; give the new one another slug"),
                                 slug=repr(slug)))
        self.slug = slug


class EditConflict(NewsletterError):
    """A version was saved as a change of revision `expected` of `language`, but revision
    `current` had been saved since: nothing was written, the text sent is still the caller's."""

    def __init__(self, slug: str, language: str, expected: int, current: int, author: str | None = None):
        if author:
            said = Text.of(N_("%(slug)s (%(language)s): revision %(current)s was saved by %(author)s after revision "
                              "%(expected)s you started from; nothing was saved: compare and save again"),
                           slug=slug, language=language, current=current, author=author, expected=expected)
        else:
            said = Text.of(N_("%(slug)s (%(language)s): revision %(current)s was saved after revision %(expected)s "
                              "you started from; nothing was saved: compare and save again"),
                           slug=slug, language=language, current=current, expected=expected)
        super().__init__(said)
        self.slug = slug
        self.language = language
        self.expected = expected
        self.current = current
        self.author = author


class ApprovalRequired(NewsletterError):
    """The issue's list has the two-person rule and no sender other than `sender` approved the
    exact revisions that would be sent (`digest` names them); `reason` (English; given as a
    `Text` by the raiser, shown translated) says what is missing."""

    def __init__(self, slug: str, digest: str, sender: str | None, reason: str | Text):
        super().__init__(Text.of(N_("%(slug)s cannot be sent yet: %(reason)s"), slug=slug, reason=text_of(reason)))
        self.slug = slug
        self.digest = digest
        self.sender = sender
        self.reason = str(reason)


class CatchUpUnavailable(NewsletterError):
    """A late translation cannot be sent to the readers who got a fallback; `reason` says why."""

    def __init__(self, slug: str, language: str, reason: str | Text):
        super().__init__(Text.of(N_("%(slug)s (%(language)s): %(reason)s"), slug=slug, language=language,
                                 reason=text_of(reason)))
        self.slug = slug
        self.language = language
        self.reason = str(reason)


class ArchiveError(NewsletterError):
    """A backup archive cannot be written, read or restored as it is; nothing was restored."""

    def __init__(self, path: str, reason: str | Text):
        super().__init__(Text.of(N_("%(path)s: %(reason)s"), path=path, reason=text_of(reason)))
        self.path = path
        self.reason = str(reason)


class StoreNotEmpty(NewsletterError):
    """A restore was asked into a store that already holds data; `counts` says what (rows per table)."""

    def __init__(self, counts: dict[str, int], undeletable: tuple[str, ...] = ()):
        self.counts = dict(counts)
        #: Tables among them that can never be deleted (an audit trail): the store cannot be replaced.
        self.undeletable = tuple(undeletable)
        held = ", ".join(f"{n} {table}" for table, n in self.counts.items())
        if self.undeletable:
            said = Text.of(N_("the store is not empty (it holds %(held)s); %(undeletable)s can never be deleted, so it "
                              "cannot be replaced either; nothing was restored"),
                           held=held, undeletable=", ".join(self.undeletable))
        else:
            said = Text.of(N_("the store is not empty (it holds %(held)s); nothing was restored"), held=held)
        super().__init__(said)
