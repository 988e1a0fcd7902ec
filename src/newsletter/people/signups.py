"""Sign-ups, one or many, in the caller's transaction: look up, plan, write, queue the mails.

Every way people come in goes through `record_signups`: a sign-up on the form or by the API
(the web app's group commit gives it many at once), `newsletter subscribe` (one), and each
batch of an import (thousands). It looks up what the store knows of the batch's addresses with
a few set-based statements, plans each request with the one set of rules
(`rules.plan_subscription`, with the import's options when importing), and writes the batch
through the one writer of people (`store.bulk`): one statement (or COPY) per table, then the
confirmation mails due into the queue (`store.mailqueue`), in the same transaction.

An address that comes twice in one batch is planned again after the first has been written
(a second round), so each request gets exactly what it would get alone, in request order.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy.orm import Session

from ..addresses import address_hash, canonical_mailbox, normalise_address
from ..attributes import AttributeSpec, check_attributes
from ..errors import ListArchived, NewsletterError, UnknownList
from ..statuses import ConsentKind, SubscriberStatus, SubscriptionStatus
from ..store import mailqueue
from ..store import people as people_store
from ..store.bulk import BulkStore, EventHead, EventRow, KnownPerson, Origin
from ..store.people import ListRow
from .names import name_in
from .profiles import merge_attributes
from .rules import (
    RESEND_WINDOW,
    SIGNUP_RULES,
    ConfirmationDue,
    ConsentContext,
    Outcome,
    Plan,
    SubscribeRules,
    confirmation_allowed,
    plan_subscription,
    validate_signup,
)

__all__ = [
    "Recorded",
    "SignupRequest",
    "Wanted",
    "mailbox_of",
    "new_keys",
    "origin_of",
    "record_signups",
    "sign_up_many",
    "subscribe_many",
]


class SignupRequest(NamedTuple):
    """One sign-up as it arrives (not checked yet)."""

    email: str
    name: str
    language: str | None
    list_slugs: tuple[str, ...]
    ctx: ConsentContext
    #: Attribute values as given ({name: raw value}); checked against the declared attributes.
    attributes: Mapping[str, Any] | None = None


class Wanted(NamedTuple):
    """A checked request: a normalised address, a clean name, a known language or None, list slugs.

    Plain values (an import's rows share the context given to `record_signups` rather than
    carry it), so that the garbage collector soon stops tracking a batch of them.
    """

    address: str
    name: str
    language: str | None
    slugs: tuple[str, ...]
    #: addresses.address_hash(address), when the caller has it already (an import's reading thread).
    hash: str | None = None
    #: Who asked, how and where; None: the context of the whole batch.
    ctx: ConsentContext | None = None
    #: Checked attribute values, ((name, value), …); a value None removes it (when the rules overwrite).
    attributes: tuple[tuple[str, Any], ...] = ()


class Recorded(NamedTuple):
    """What a request did: its outcome, the mail due (None: none) and its queue row (None: not queued)."""

    outcome: Outcome
    due: ConfirmationDue | None = None
    queued: int | None = None


def origin_of(ctx: ConsentContext) -> Origin:
    """The consent-log columns a context fills, cut to the columns' sizes."""
    return Origin(ctx.channel, (ctx.ip or None) and ctx.ip[:64], (ctx.user_agent or None) and ctx.user_agent[:512],
                  (ctx.source or None) and ctx.source[:200], ctx.consent_version)


def mailbox_of(request: SignupRequest) -> str | None:
    """The canonical mailbox a sign-up reaches (None: its address is refused, it writes nothing).

    What two sign-ups written at once must not share (`web.group_commit` keys its lanes by it):
    the person is found by the address, the re-send limits count by the mailbox, and every
    address of one person reaches one mailbox.
    """
    try:
        return canonical_mailbox(normalise_address(request.email))
    except NewsletterError:
        return None


def new_keys(n: int) -> list[str]:
    """`n` public subscriber keys (128 random bits, URL-safe base64, as `secrets.token_urlsafe(16)`),
    from one read of the system's random source rather than one per key."""
    data = secrets.token_bytes(16 * n)
    return [base64.urlsafe_b64encode(data[i:i + 16]).rstrip(b"=").decode("ascii") for i in range(0, 16 * n, 16)]


def subscribe_many(session: Session, requests: Sequence[SignupRequest], *, now: datetime,
                   languages: tuple[str, ...], check_deliverability: bool = False,
                   public_only: bool = False, attribute_specs: Sequence[AttributeSpec] = ()
                   ) -> list[ConfirmationDue | None | NewsletterError]:
    """`sign_up_many`, each result the ConfirmationDue of the mail queued (None: none is due) or the error."""
    return [r.due if isinstance(r, Recorded) else r
            for r in sign_up_many(session, requests, now=now, languages=languages,
                                  check_deliverability=check_deliverability, public_only=public_only,
                                  attribute_specs=attribute_specs)]


def sign_up_many(session: Session, requests: Sequence[SignupRequest], *, now: datetime,
                 languages: tuple[str, ...], check_deliverability: bool = False,
                 public_only: bool = False, attribute_specs: Sequence[AttributeSpec] = (),
                 rules: SubscribeRules = SIGNUP_RULES) -> list[Recorded | NewsletterError]:
    """Sign-ups (double opt-in) in the caller's transaction, in request order, their mails queued.

    `languages` are the installation's, the default first (a new person who names none gets it).
    Each result is what the request did (`Recorded`), or the error it is refused with
    (InvalidAddress, InvalidField, UnknownList, or UnknownList for a list that is not public
    when `public_only`; InvalidField for an attribute not in `attribute_specs` or a value its spec
    refuses) — returned, not raised: a bad request changes nothing and does not stop
    the others. Attribute values fill in only what a person does not have yet, unless `rules`
    say `overwrite_attributes`. Errors of the store itself (an address inserted meanwhile by another process)
    are raised for the whole batch.
    """
    results: list[Recorded | NewsletterError] = [Recorded(Outcome.ALREADY_THERE)] * len(requests)
    checked: list[tuple[int, Wanted]] = []
    for i, r in enumerate(requests):
        try:
            address, name, language, slugs = validate_signup(r.email, r.name, r.language, r.list_slugs,
                                                             languages=languages,
                                                             check_deliverability=check_deliverability)
            attributes = tuple(check_attributes(attribute_specs, r.attributes).items()) if r.attributes else ()
        except NewsletterError as exc:
            results[i] = exc
            continue
        checked.append((i, Wanted(address, name, language, tuple(slugs), ctx=r.ctx, attributes=attributes)))
    if not checked:
        return results
    lists = people_store.lists_by_slug(session, {slug for _, w in checked for slug in w.slugs})
    listed: list[tuple[int, Wanted]] = []
    for i, w in checked:
        unknown = next((s for s in w.slugs if s not in lists or lists[s].closed or (public_only and not lists[s].public)),
                       None)
        if unknown is not None:
            # The public form says the same of an archived list as of one that never was.
            closed = unknown in lists and lists[unknown].closed and not public_only
            results[i] = ListArchived(unknown) if closed else UnknownList(unknown)
        else:
            listed.append((i, w))
    recorded = record_signups(session, [w for _, w in listed], lists, now=now, default_language=languages[0],
                              rules=rules)
    for (i, _), outcome in zip(listed, recorded):
        results[i] = outcome
    return results


def record_signups(session: Session, wanted: Sequence[Wanted], lists: Mapping[str, ListRow], *, now: datetime,
                   default_language: str, rules: SubscribeRules = SIGNUP_RULES, ctx: ConsentContext | None = None,
                   write: bool = True, bulk: BulkStore | None = None) -> list[Recorded]:
    """Apply checked requests under `rules` in the caller's transaction; one Recorded each, in order.

    Every slug must be in `lists`; a request without a context of its own has `ctx`.
    `write=False` plans and counts, writing nothing (a dry run: the mails that would be due are
    returned, not queued). `bulk` reuses the caller's writer (an import keeps one for its
    connection).
    """
    bulk = bulk or BulkStore(session.connection())
    if len({w.address for w in wanted}) == len(wanted):  # the common case (an import merges its repeats)
        return _record_round(session, bulk, list(wanted), lists, now=now, default_language=default_language,
                             rules=rules, ctx=ctx, write=write)
    results: list[Recorded | None] = [None] * len(wanted)
    pending = list(enumerate(wanted))
    while pending:
        seen: set[str] = set()
        round_, later = [], []
        for item in pending:
            (later if item[1].address in seen else round_).append(item)
            seen.add(item[1].address)
        outcomes = _record_round(session, bulk, [w for _, w in round_], lists, now=now,
                                 default_language=default_language, rules=rules, ctx=ctx, write=write)
        for (i, _), outcome in zip(round_, outcomes):
            results[i] = outcome
        pending = later
    return results  # type: ignore[return-value]


#: What a request that mails nobody did: one value per outcome (no object per row).
_RECORDED = {outcome: Recorded(outcome) for outcome in Outcome}


def _record_round(session: Session, bulk: BulkStore, wanted: list[Wanted], lists: Mapping[str, ListRow], *,
                  now: datetime, default_language: str, rules: SubscribeRules, ctx: ConsentContext | None,
                  write: bool) -> list[Recorded]:
    """One round: every address at most once. Plans each request, then writes them all."""
    hashes = [w.hash or address_hash(w.address) for w in wanted]
    suppressed = bulk.suppressed(sorted(set(hashes)))
    known = bulk.people([w.address for w in wanted])
    current = bulk.subscriptions([k.id for k in known.values()]) if known else {}
    ids_of: dict[tuple[str, ...], tuple[int, ...]] = {}  # files repeat a few combinations
    people = [known.get(w.address) for w in wanted]
    plans: list[Plan] = []
    for w, hash_, person in zip(wanted, hashes, people):
        list_ids = ids_of.get(w.slugs)
        if list_ids is None:
            list_ids = ids_of[w.slugs] = tuple(lists[s].id for s in w.slugs)
        plans.append(plan_subscription(list_ids, person, current.get(person.id, {}) if person else {},
                                       suppressed=hash_ in suppressed, name=w.name, language=w.language,
                                       default_language=default_language, rules=rules))
    # The re-send limits count per mailbox (`ana+1@x` and `ana+2@x` are one), over every address
    # reaching it, the mails this round plans included, in request order.
    # (A person written without their mailbox, by an older version, is still found by address.)
    asking = [(i, w.address, canonical_mailbox(w.address)) for i, (w, plan) in enumerate(zip(wanted, plans))
              if plan.mail]
    if asking:
        sent = bulk.confirmations_to_mailboxes(sorted({k for _, a, m in asking for k in (a, m)}),
                                               now - RESEND_WINDOW)
        for i, address, mailbox in asking:
            earlier = sent.get(mailbox, []) + (sent.get(address, []) if address != mailbox else [])
            if confirmation_allowed(earlier, now):
                sent.setdefault(mailbox, []).append(now)
            else:
                plans[i] = plans[i]._replace(mail=())
    slug_of = {row.id: slug for slug, row in lists.items()}
    if not write:  # a dry run: the mails that would be due, for counting (no key: nobody is written)
        return [Recorded(plan.outcome, _due(w, plan, slug_of, lists, None, "", *(plan.details or person[3:5])))
                if plan.mail else _RECORDED[plan.outcome] for w, plan, person in zip(wanted, plans, people)]
    who = _write_round(session, bulk, wanted, plans, people, slug_of, now=now, rules=rules, ctx=ctx)
    _write_attributes(session, wanted, people, who, now=now, overwrite=rules.overwrite_attributes)
    queued = iter(mailqueue.enqueue(session, [(who[w.address][0], ",".join(slug_of[lid] for lid in plan.mail))
                                              for w, plan in zip(wanted, plans) if plan.mail], now=now))
    return [Recorded(plan.outcome, _due(w, plan, slug_of, lists, *who[w.address]), next(queued)) if plan.mail
            else _RECORDED[plan.outcome] for w, plan in zip(wanted, plans)]


def _write_round(session: Session, bulk: BulkStore, wanted: list[Wanted], plans: list[Plan],
                 people: list[KnownPerson | None], slug_of: Mapping[int, str], *, now: datetime,
                 rules: SubscribeRules, ctx: ConsentContext | None) -> dict[str, tuple[int, str, str, str]]:
    """Write what the round's plans say, through the one writer; returns the (id, key, name,
    language) of each person written, by address."""
    new = [i for i, person in enumerate(people) if person is None and plans[i].outcome is Outcome.CHANGED]
    keys = new_keys(len(new))
    with bulk.own_values(len(wanted)):  # a batch of n requests writes about n rows a table, or more
        ids = bulk.insert_people([(key, wanted[i].address, *plans[i].details) for i, key in zip(new, keys)],
                                 status=SubscriberStatus.ACTIVE, at=now,
                                 mailboxes=[_mailbox(wanted[i].address) for i in new])
        who = {wanted[i].address: (sid, key, *plans[i].details) for i, sid, key in zip(new, ids, keys)}
        # Plain tuples all (the rows of `store.bulk`): the garbage collector soon stops tracking them.
        subscriptions: list[tuple[int, int]] = []
        repend: list[tuple[int, int]] = []
        activate: list[tuple[int, int]] = []
        details: list[tuple[int, str, str]] = []
        events: list[EventRow] = []
        heads: dict[EventHead, int] = {}
        kind = ConsentKind.IMPORTED if rules.confirmed else ConsentKind.SIGNUP
        last_ctx = None  # an import's rows share one context: its heads are looked up once
        for w, plan, person in zip(wanted, plans, people):
            if plan.outcome is not Outcome.CHANGED:
                continue
            if person is not None:
                sid, key, name, language = person.id, person.key, person.name, person.language
                if plan.details is not None:
                    name, language = plan.details
                    details.append((sid, name, language))
                who[w.address] = (sid, key, name, language)
            else:
                sid = who[w.address][0]
            request_ctx = w.ctx or ctx
            if request_ctx is not last_ctx:
                last_ctx, origin = request_ctx, origin_of(request_ctx)
                logged = heads.setdefault(EventHead(kind, origin), len(heads))
                mailed = heads.setdefault(EventHead(ConsentKind.CONFIRMATION_SENT, origin), len(heads))
            note = rules.consent_note if rules.confirmed else request_ctx.note
            for lid in plan.add:
                subscriptions.append((sid, lid))
            for lid in plan.repend:
                repend.append((sid, lid))
            for lid in plan.activate:
                activate.append((sid, lid))
            for lid in plan.logged:
                events.append((sid, lid, logged, note))  # an EventRow
            if plan.mail:
                events.append((sid, None, mailed, ",".join(slug_of[lid] for lid in plan.mail)))
        bulk.insert_subscriptions(subscriptions,
                                  status=SubscriptionStatus.ACTIVE if rules.confirmed else SubscriptionStatus.PENDING,
                                  at=now, confirmed_at=now if rules.confirmed else None)
        bulk.insert_events(events, list(heads), at=now)
    people_store.repend_subscriptions(session, repend, now=now)
    bulk.activate(activate, now)
    people_store.update_details(session, details, now=now)
    return who


def _write_attributes(session: Session, wanted: list[Wanted], people: list[KnownPerson | None],
                      who: Mapping[str, tuple], *, now: datetime, overwrite: bool) -> None:
    """The round's attribute values, for every person it knows or wrote (one a suppressed
    address was not written for is left out)."""
    changes = []
    for w, person in zip(wanted, people):
        values = w.attributes
        if not values:
            continue
        sid = person.id if person is not None else who.get(w.address, (None,))[0]
        if sid is not None:
            changes.append((sid, dict(values)))
    if changes:
        merge_attributes(session, changes, overwrite=overwrite, now=now)


def _mailbox(address: str) -> str | None:
    """What the store keeps of an address's mailbox: None when it is the address itself."""
    mailbox = canonical_mailbox(address)
    return None if mailbox == address else mailbox


def _due(w: Wanted, plan: Plan, slug_of: Mapping[int, str], lists: Mapping[str, ListRow], sid: int | None, key: str,
         name: str, language: str) -> ConfirmationDue:
    slugs = tuple(slug_of[lid] for lid in plan.mail)
    return ConfirmationDue(key, w.address, name, language, slugs,
                           tuple(name_in(lists[s].translations, lists[s].name, "", language)[0] for s in slugs), sid)
