"""Dates in archival lines: the date a line was said on, and relative phrases made absolute.

Pure functions, no I/O. A chat line like `[1:56 pm on 8 May, 2023] Ana: we went camping last
weekend` says *when* only relative to its own date, so a question "what did Ana do on 6 May
2023?" shares no word with it. The index key of a line (`chunking.build_units`) therefore carries
the phrase resolved against the line's date:

    day = line_date("[1:56 pm on 8 May, 2023] Ana: hi")       # date(2023, 5, 8)
    resolve_relative("we went yesterday", day)                # "we went yesterday (7 May 2023)"

Only the key changes: stored and returned text stays as written. Phrases are resolved the way a
reader of the chat would (past by default: "on Saturday" is the last Saturday before the line's
date); what cannot be pinned to a day is given as its span ("last week (the week before 8 May
2023)", "last month (April 2023)").
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date, timedelta
from typing import Optional

MONTHS = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
]
WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]

_MONTH_NUMBER = {m.lower(): i for i, m in enumerate(MONTHS, start=1)}
_MONTH_NUMBER.update({m[:3].lower(): i for i, m in enumerate(MONTHS, start=1)})
_MONTH_NUMBER["sept"] = 9
_MONTH = r"(?P<month>" + "|".join(sorted(_MONTH_NUMBER, key=len, reverse=True)) + r")\.?"
_DAY = r"(?P<day>\d{1,2})(?:st|nd|rd|th)?"
_YEAR = r"(?P<year>\d{4})"

_DATE_FORMS = [
    re.compile(r"\b(?P<year>\d{4})-(?P<mnum>\d{1,2})-(?P<day>\d{1,2})\b"),
    re.compile(rf"\b{_DAY}\s+(?:of\s+)?{_MONTH},?\s+{_YEAR}\b", re.IGNORECASE),
    re.compile(rf"\b{_MONTH}\s+{_DAY},?\s+{_YEAR}\b", re.IGNORECASE),
]
LEADING_CHARS = 5
"""Without brackets, a line's own date must start within its first characters (`Mon, May 8,
2023 7:02 PM Ana: ...`, `2023-05-08 Ana: ...`): a date further in is something the line talks
about ("I was born on 3 March 1990"), not when it was said."""
_BRACKETED = re.compile(r"^\s*\[([^\]]{1,80})\]")


def render(day: date) -> str:
    """`7 May 2023`: one spelling for every date a key carries (what questions tend to use)."""
    return f"{day.day} {MONTHS[day.month - 1]} {day.year}"


def find_date(text: str) -> Optional[date]:
    """The first calendar date written in `text` (`8 May 2023`, `May 8, 2023`, `2023-05-08`,
    `8th of May, 2023`), None if there is none or it is not a real day."""
    found = _find_date(text)
    return found[1] if found is not None else None


def _find_date(text: str) -> Optional[tuple[int, date]]:
    best: Optional[tuple[int, date]] = None
    for form in _DATE_FORMS:
        for m in form.finditer(text):
            parts = m.groupdict()
            month = (
                int(parts["mnum"])
                if parts.get("mnum")
                else _MONTH_NUMBER.get((parts.get("month") or "").lower().rstrip("."))
            )
            if month is None:
                continue
            try:
                found = date(int(parts["year"]), month, int(parts["day"]))
            except ValueError:
                continue
            if best is None or m.start() < best[0]:
                best = (m.start(), found)
            break
    return best


def line_date(line: str) -> Optional[date]:
    """The date a line was said on: in its `[...]` prefix, or else at its very start."""
    bracket = _BRACKETED.match(line)
    if bracket is not None:
        return find_date(bracket.group(1))
    found = _find_date(line[:80])
    return found[1] if found is not None and found[0] <= LEADING_CHARS else None


def date_prefix(line: str) -> tuple[str, str]:
    """`(prefix, rest)`: the line's bracketed prefix holding its date (`"[8 May 2023]"`) and what
    follows it (leading space dropped); `("", line)` when it has none."""
    bracket = _BRACKETED.match(line)
    if bracket is None or find_date(bracket.group(1)) is None:
        return "", line
    return bracket.group(0).strip(), line[bracket.end() :].lstrip()


# ---- relative phrases ----------------------------------------------------------------------------


def _weekday_before(day: date, weekday: int) -> date:
    return day - timedelta(days=(day.weekday() - weekday) % 7 or 7)


def _weekday_after(day: date, weekday: int) -> date:
    return day + timedelta(days=(weekday - day.weekday()) % 7 or 7)


def _month(day: date, shift: int) -> str:
    index = day.year * 12 + day.month - 1 + shift
    return f"{MONTHS[index % 12]} {index // 12}"


_NUMBERS = {
    "a": 1,
    "an": 1,
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "a couple of": 2,
    "a couple": 2,
    "couple of": 2,
}
_COUNT = r"(?P<n>\d{1,2}|" + "|".join(sorted(_NUMBERS, key=len, reverse=True)) + ")"
_WEEKDAY = r"(?P<wd>" + "|".join(WEEKDAYS) + r")"

Rule = tuple["re.Pattern[str]", Callable[["re.Match[str]", date], Optional[str]]]


def _count(m: re.Match[str]) -> int:
    n = m.group("n").lower()
    return int(n) if n.isdigit() else _NUMBERS[n]


def _ago(m: re.Match[str], day: date) -> Optional[str]:
    n, unit = _count(m), m.group("unit").lower().rstrip("s")
    if unit == "day":
        return render(day - timedelta(days=n))
    if unit == "week":
        return render(day - timedelta(weeks=n))
    if unit == "month":
        return _month(day, -n)
    return str(day.year - n)


def _weekday(m: re.Match[str], day: date) -> Optional[str]:
    which = (m.group("which") or "").lower()
    weekday = WEEKDAYS.index(m.group("wd").capitalize())
    if which in ("next", "this coming", "coming"):
        return render(_weekday_after(day, weekday))
    return render(_weekday_before(day, weekday))


def _rule(pattern: str, resolve: Callable[[re.Match[str], date], Optional[str]]) -> Rule:
    return re.compile(rf"\b(?:{pattern})\b", re.IGNORECASE), resolve


# Longest phrases first: "the day before yesterday" must not be read as "yesterday".
RULES: list[Rule] = [
    _rule(r"the day before yesterday", lambda m, d: render(d - timedelta(days=2))),
    _rule(r"the day after tomorrow", lambda m, d: render(d + timedelta(days=2))),
    _rule(r"yesterday|last night", lambda m, d: render(d - timedelta(days=1))),
    _rule(
        r"today|tonight|this (?:morning|afternoon|evening)|earlier today",
        lambda m, d: render(d),
    ),
    _rule(r"tomorrow", lambda m, d: render(d + timedelta(days=1))),
    _rule(
        rf"{_COUNT}\s+(?P<unit>days?|weeks?|months?|years?)\s+ago",
        _ago,
    ),
    _rule(
        r"(?:last|this past|over the) weekend",
        lambda m, d: f"the weekend before {render(d)}",
    ),
    _rule(r"(?:next|this coming) weekend", lambda m, d: f"the weekend after {render(d)}"),
    _rule(
        rf"(?:(?P<which>last|this past|past|next|this coming|coming|on)\s+){_WEEKDAY}",
        _weekday,
    ),
    _rule(r"last week", lambda m, d: f"the week before {render(d)}"),
    _rule(r"next week", lambda m, d: f"the week after {render(d)}"),
    _rule(r"last month", lambda m, d: _month(d, -1)),
    _rule(r"this month", lambda m, d: _month(d, 0)),
    _rule(r"next month", lambda m, d: _month(d, 1)),
    _rule(r"last year", lambda m, d: str(d.year - 1)),
    _rule(r"next year", lambda m, d: str(d.year + 1)),
]


def resolve_relative(text: str, day: date) -> str:
    """`text` with each relative time phrase followed by what it means on `day`:
    `"yesterday"` -> `"yesterday (7 May 2023)"`. A phrase already followed by a parenthesis is
    left alone (resolving twice changes nothing)."""
    spans: list[tuple[int, int, str]] = []
    for pattern, resolve in RULES:
        for m in pattern.finditer(text):
            if any(m.start() < e and s < m.end() for s, e, _ in spans):
                continue
            if text[m.end() : m.end() + 2].startswith(" ("):
                continue
            meaning = resolve(m, day)
            if meaning:
                spans.append((m.start(), m.end(), meaning))
    if not spans:
        return text
    out, at = [], 0
    for _start, end, meaning in sorted(spans):
        out.append(text[at:end])
        out.append(f" ({meaning})")
        at = end
    out.append(text[at:])
    return "".join(out)
