"""Wall-clock time in a named zone (the venue's), and send windows. Pure: values in, values out.

A moment is asked for as local wall time in an IANA zone ("2027-07-08 19:00",
"Europe/Amsterdam") and kept as UTC, worked out with the zone's rules (zoneinfo, with the
`tzdata` package where the system has no zone database). Local times that do not exist (the
hour skipped when the clocks go forward) are refused; a local time that happens twice (the
hour repeated when they go back) means its first occurrence.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from typing import NamedTuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ..errors import InvalidField
from ..texts import N_, Text

__all__ = ["LOCAL_FORMAT", "Window", "zone_named", "parse_local", "local_to_utc", "parse_window", "describe_delay"]

LOCAL_FORMAT = "%Y-%m-%d %H:%M"


def zone_named(name: str) -> ZoneInfo:
    """The IANA time zone `name` ("Europe/Amsterdam"). Raises InvalidField("time zone")."""
    try:
        if not name or name.startswith("/") or ".." in name:
            raise ValueError(name)
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidField("time zone", Text.of(N_("%(value)s is not an IANA time zone such as Europe/Amsterdam or "
                                                   "America/New_York"), value=repr(name))) from None


def parse_local(text: str, field: str = "at") -> datetime:
    """Wall time written "YYYY-MM-DD HH:MM" (or with a T), as a naive datetime. Raises InvalidField(field)."""
    try:
        return datetime.strptime(text.strip().replace("T", " "), LOCAL_FORMAT)
    except ValueError:
        raise InvalidField(field, Text.of(N_("%(value)s is not a date and time like 2027-07-08 19:00"),
                                          value=repr(text))) from None


def local_to_utc(local: datetime, zone: ZoneInfo, field: str = "at") -> datetime:
    """The UTC moment of wall time `local` in `zone`; the first one when the hour happens twice.
    Raises InvalidField(field) for a wall time the zone skips."""
    first = local.replace(tzinfo=zone, fold=0)
    moment = first.astimezone(timezone.utc)
    if moment.astimezone(zone).replace(tzinfo=None) != local:
        raise InvalidField(field, Text.of(N_("%(at)s does not happen in %(zone)s: the clocks go forward that night; "
                                             "choose a time outside the skipped hour"),
                                          at=f"{local:{LOCAL_FORMAT}}", zone=zone.key))
    return moment


class Window(NamedTuple):
    """The hours of the day, local to `zone`, in which mail may go out; `end` before `start`
    runs over midnight."""

    start: time
    end: time
    zone: ZoneInfo

    def __str__(self) -> str:
        return f"{self.start:%H:%M}-{self.end:%H:%M}"

    def contains(self, moment: datetime) -> bool:
        """Whether `moment` (aware) falls inside the window."""
        t = moment.astimezone(self.zone).time()
        if self.start <= self.end:
            return self.start <= t < self.end
        return t >= self.start or t < self.end

    def next_open(self, moment: datetime) -> datetime:
        """`moment` when it is inside the window, else the window's next opening (UTC)."""
        if self.contains(moment):
            return moment
        day: date = moment.astimezone(self.zone).date()
        for offset in range(3):
            opening = datetime.combine(day + timedelta(days=offset), self.start, tzinfo=self.zone)
            opening = opening.astimezone(timezone.utc)
            if opening > moment:
                return opening
        raise AssertionError("a window opens every day")  # pragma: no cover


def parse_window(text: str, zone: ZoneInfo) -> Window:
    """A window written "HH:MM-HH:MM" in `zone`. Raises InvalidField("window")."""
    try:
        start, end = (datetime.strptime(part.strip(), "%H:%M").time() for part in text.split("-"))
    except ValueError:
        raise InvalidField("window", Text.of(N_("%(value)s is not a window like 07:00-22:00"),
                                             value=repr(text))) from None
    if start == end:
        raise InvalidField("window", Text.of(N_("%(value)s opens and closes at the same minute"), value=repr(text)))
    return Window(start, end, zone)


def describe_delay(delay: timedelta) -> str:
    """A delay in words for people: "3 h 5 min", "12 min"."""
    minutes = int(delay.total_seconds() // 60)
    if minutes < 60:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60} min"
