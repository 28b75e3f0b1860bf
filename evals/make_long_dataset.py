"""Generate the long-conversation dev set, deterministically, from the hand-written bank in
`_longbank.py`.

    python -m evals.make_long_dataset          # rewrites evals/data/long_conversations.jsonl
    python -m evals.make_long_dataset --check  # exit 1 if the committed file differs
    python -m evals.make_long_dataset --stats  # sizes, type shares, question/evidence word overlap

Each conversation is two friends chatting casually over 15-22 dated sessions (400+ turns): openers,
small talk, things that happened to them told with relative time phrases ("yesterday", "last
weekend"), shared photos with a one-line caption, facts that change over time, and callbacks to
earlier topics. Questions come in the four types of real long-conversation benchmarks, in about
their shares: `single_hop` (one turn answers it), `temporal` (a date that must be worked out from
the session date and a relative phrase, or the event on a given date), `multi_hop` (2-4 turns,
in different sessions) and `open_domain` (an inference from several facts about a person).
Nothing here comes from a third-party dataset.
"""

from __future__ import annotations

import argparse
import random
import re
import sys
from collections import Counter
from datetime import date, datetime, timedelta
from typing import Optional

from . import _longbank as bank
from .dataset import (
    LONG_DATASET,
    Conversation,
    Question,
    Session,
    Turn,
    dump_agentmem,
    load_agentmem,
)
from .dataset import LONG_QUESTION_TYPES as QUESTION_TYPES
from .make_dataset import Line, Moment, PendingQuestion, fill
from .text import content_words

SEED = 20261202
N_CONVERSATIONS = 12
QUOTA = {"single_hop": 24, "temporal": 9, "multi_hop": 8, "open_domain": 3}
"""Per conversation: 55% / 20% / 18% / 7%, the shares of real long-conversation benchmarks."""
DISTRACTOR_EVENTS = 7
"""Events nobody asks about, on top of those the questions need."""
PHOTO_RATE = 0.4
_MONTHS = [
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
_WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]


# --- dates ----------------------------------------------------------------------------------------


def render_day(d: date, style: int = 0) -> str:
    """A calendar day the way people write it; questions vary the style."""
    if style == 1:
        return f"{_MONTHS[d.month - 1]} {d.day}, {d.year}"
    return f"{d.day} {_MONTHS[d.month - 1]} {d.year}"


def render_session_date(ts: datetime, style: str) -> str:
    """The session header each line carries; each conversation keeps one of three chat-export
    styles."""
    hour12 = ts.hour % 12 or 12
    ampm = "am" if ts.hour < 12 else "pm"
    if style == "time_on":
        return f"{hour12}:{ts.minute:02d} {ampm} on {ts.day} {_MONTHS[ts.month - 1]}, {ts.year}"
    if style == "us":
        return (
            f"{_WEEKDAYS[ts.weekday()][:3]}, {_MONTHS[ts.month - 1][:3]} {ts.day}, {ts.year} "
            f"{hour12}:{ts.minute:02d} {ampm.upper()}"
        )
    return f"{ts.day} {_MONTHS[ts.month - 1]} {ts.year}"


def resolve_when(session_day: date, kind: str, n: int) -> tuple[str, Optional[date]]:
    """(answer text, exact day or None) for a relative phrase said on `session_day`."""
    if kind == "day":
        d = session_day + timedelta(days=n)
        return render_day(d), d
    if kind == "weekday":
        back = (session_day.weekday() - n) % 7 or 7
        d = session_day - timedelta(days=back)
        return render_day(d), d
    if kind == "weekend":
        return f"the weekend before {render_day(session_day)}", None
    if kind == "week":
        return f"the week before {render_day(session_day)}", None
    if kind == "month":
        first = session_day.replace(day=1) - timedelta(days=1)
        return f"{_MONTHS[first.month - 1]} {first.year}", None
    raise ValueError(f"unknown time phrase kind {kind!r}")


# --- planning -------------------------------------------------------------------------------------


class Deck:
    """Deals a list's items in random order without repeats until it runs out, then reshuffles:
    a chat reuses its small talk only after it has used all of it, as people do."""

    def __init__(self, rng: random.Random, items: list):
        self.rng, self.items, self.left = rng, items, []

    def deal(self):
        if not self.left:
            self.left = list(self.items)
            self.rng.shuffle(self.left)
        return self.left.pop()


def vary(rng: random.Random, text: str) -> str:
    """Sometimes open a reused small-talk turn with an interjection."""
    if rng.random() < 0.35 and not text.startswith("["):
        return rng.choice(bank.INTERJECTIONS) + text[:1].lower() + text[1:]
    return text


def capitalise(text: str) -> str:
    return text[:1].upper() + text[1:]


class LongConversationBuilder:
    def __init__(self, rng: random.Random, index: int, names: tuple[str, str]):
        self.rng = rng
        self.cid = f"lc-{index:02d}"
        self.names = names
        self.pronouns = {n: rng.choice([("she", "her"), ("he", "his")]) for n in names}
        self.n_sessions = rng.randint(15, 22)
        self.style = ("plain", "time_on", "us")[index % 3]
        start = datetime(2022, 3, 1, rng.randrange(8, 22), rng.randrange(60)) + timedelta(
            days=rng.randrange(0, 700)
        )
        self.times = [start]
        for _ in range(self.n_sessions - 1):
            nxt = self.times[-1] + timedelta(days=rng.randrange(3, 22))
            self.times.append(nxt.replace(hour=rng.randrange(8, 22), minute=rng.randrange(60)))
        self.moments: list[Moment] = []
        self.questions: list[PendingQuestion] = []
        self.callbacks: list[tuple[int, str, str]] = []  # (session after which, owner, topic)
        self.tag_counter = 0

    # -- helpers --
    def _tag(self) -> str:
        self.tag_counter += 1
        return f"t{self.tag_counter}"

    def _other(self, owner: str) -> str:
        return self.names[1] if owner == self.names[0] else self.names[0]

    def _ask(self, template: str, values: dict[str, str], owner: str) -> str:
        subj, poss = self.pronouns[owner]
        text = fill(template, {**values, "P": owner})
        text = re.sub(r"\bher\b", poss, text)
        return re.sub(r"\bshe\b", subj, text)

    def _slots(self, slots: dict[str, list[str]]) -> dict[str, str]:
        values: dict[str, str] = {}
        for name, options in slots.items():
            taken = set(values.values())
            values[name] = self.rng.choice([o for o in options if o not in taken])
        return values

    def _statement(
        self,
        tone: str,
        text: str,
        tag: Optional[str],
        *,
        prompt: bool = False,
        photo: Optional[str] = None,
    ) -> list[Line]:
        """The owner's evidence turn, the friend's reaction, sometimes the owner's follow-up."""
        rng = self.rng
        lines = []
        if prompt:
            lines.append(
                Line(
                    "Q",
                    rng.choice(
                        [
                            "So what have you been up to?",
                            "Anything fun happen since we last talked?",
                            "How was your week, really?",
                            "Tell me something good that happened!",
                        ]
                    ),
                )
            )
        text = capitalise(text)
        if photo and rng.random() < 0.6:
            lines.append(Line("P", f"{text} [shares a photo of {photo}]", tag))
        else:
            lines.append(Line("P", text, tag))
            if photo:
                lines.append(
                    Line(
                        "P",
                        rng.choice(["Here, look!", "I took a picture.", "Look at this!"])
                        + f" [shares a photo of {photo}]",
                    )
                )
        lines.append(Line("Q", rng.choice(bank.REACTIONS[tone])))
        if rng.random() < 0.6:
            lines.append(Line("P", rng.choice(bank.FOLLOW_UPS[tone])))
        return lines

    def _sessions(self, k: int, *, after: int = 0) -> list[int]:
        """k distinct sessions at or after `after`, in order."""
        return sorted(self.rng.sample(range(after, self.n_sessions), k))

    def _when(self, session: int, *, exact: bool = False) -> tuple[str, str, Optional[date]]:
        options = [w for w in bank.WHENS_PAST if not exact or w[1] in ("day", "weekday")]
        phrase, kind, n = self.rng.choice(options)
        answer, day = resolve_when(self.times[session].date(), kind, n)
        return phrase, answer, day

    # -- facts --
    def add_event(self, template: dict, owner: str, qtype: Optional[str]) -> None:
        rng = self.rng
        values = self._slots(template.get("slots", {}))
        session = rng.randrange(self.n_sessions)
        on_date = qtype == "temporal" and rng.random() < 0.3 and bool(template.get("on_ask"))
        phrase, when_answer, day = self._when(session, exact=on_date)
        values["when"] = phrase
        tag = self._tag()
        photo = (
            fill(rng.choice(template["photo"]), values)
            if template.get("photo") and rng.random() < PHOTO_RATE
            else None
        )
        text = fill(rng.choice(template["say"]), values)
        self.moments.append(
            Moment(
                session,
                owner,
                self._statement(
                    template["tone"], text, tag, prompt=rng.random() < 0.3, photo=photo
                ),
            )
        )
        if session + 1 < self.n_sessions and rng.random() < 0.35:
            self.callbacks.append(
                (rng.randrange(session + 1, self.n_sessions), owner, template["topic"])
            )
        if qtype == "single_hop":
            q, a = rng.choice(template["ask"])
            self.questions.append(
                PendingQuestion(qtype, self._ask(q, values, owner), fill(a, values), [tag], owner)
            )
        elif qtype == "temporal":
            if on_date:
                assert day is not None
                q = self._ask(
                    rng.choice(template["on_ask"]),
                    {**values, "date": render_day(day, rng.randrange(2))},
                    owner,
                )
                a = text  # what happened that day, as told
            else:
                q, a = self._ask(rng.choice(template["when_ask"]), values, owner), when_answer
            self.questions.append(PendingQuestion(qtype, q, a, [tag], owner))

    def add_change(self, template: dict, owner: str, qtype: str) -> None:
        rng = self.rng
        values = self._slots(template["slots"])
        s1, s2 = self._sessions(2)
        phrase, when_answer, _ = self._when(s2)
        values["when"] = phrase
        tag = self._tag()
        self.moments.append(
            Moment(
                s1,
                owner,
                self._statement("neutral", fill(rng.choice(template["say1"]), values), None),
            )
        )
        self.moments.append(
            Moment(
                s2, owner, self._statement("happy", fill(rng.choice(template["say2"]), values), tag)
            )
        )
        if qtype == "single_hop":
            q, a = rng.choice(template["ask_latest"])
            self.questions.append(
                PendingQuestion(qtype, self._ask(q, values, owner), fill(a, values), [tag], owner)
            )
        else:
            self.questions.append(
                PendingQuestion(
                    qtype,
                    self._ask(rng.choice(template["ask_when"]), values, owner),
                    when_answer,
                    [tag],
                    owner,
                )
            )

    def add_collection(self, template: dict, owner: str) -> None:
        rng = self.rng
        k = rng.choice([2, 2, 3, 3, 4])
        items = rng.sample(template["items"], k)
        tags = []
        says = rng.sample(template["say"], min(k, len(template["say"]))) * 2
        for session, item, say in zip(self._sessions(k), items, says, strict=False):
            tag = self._tag()
            tags.append(tag)
            photo = (
                rng.choice(template["photos"])
                if template.get("photos") and rng.random() < PHOTO_RATE
                else None
            )
            self.moments.append(
                Moment(
                    session,
                    owner,
                    self._statement("neutral", fill(say, {"item": item}), tag, photo=photo),
                )
            )
        # The friend mentions one item of the same kind: it shares every word but is not the answer.
        other_item = rng.choice([i for i in template["items"] if i not in items])
        self.moments.append(
            Moment(
                rng.randrange(self.n_sessions),
                self._other(owner),
                self._statement(
                    "neutral", fill(rng.choice(template["say"]), {"item": other_item}), None
                ),
            )
        )
        q = self._ask(rng.choice(template["ask"]), {}, owner)
        self.questions.append(PendingQuestion("multi_hop", q, ", ".join(items), tags, owner))

    def add_chain(self, template: dict, owner: str) -> None:
        rng = self.rng
        values = self._slots(template["slots"])
        s1, s2 = self._sessions(2)
        tags = [self._tag(), self._tag()]
        self.moments.append(
            Moment(
                s1,
                owner,
                self._statement("neutral", fill(rng.choice(template["say1"]), values), tags[0]),
            )
        )
        self.moments.append(
            Moment(
                s2,
                owner,
                self._statement("happy", fill(rng.choice(template["say2"]), values), tags[1]),
            )
        )
        q = self._ask(rng.choice(template["ask"]), values, owner)
        self.questions.append(
            PendingQuestion("multi_hop", q, fill(template["answer"], values), tags, owner)
        )

    def add_inference(self, template: dict, owner: str) -> None:
        rng = self.rng
        k = rng.choice([2, 3])
        tags = []
        for session, say in zip(self._sessions(k), rng.sample(template["say"], k), strict=True):
            tag = self._tag()
            tags.append(tag)
            self.moments.append(Moment(session, owner, self._statement("neutral", say, tag)))
        q = self._ask(rng.choice(template["ask"]), {}, owner)
        self.questions.append(
            PendingQuestion("open_domain", q, self._ask(template["answer"], {}, owner), tags, owner)
        )

    def plan(self) -> None:
        rng = self.rng
        need = dict(QUOTA)
        owners = lambda: rng.choice(self.names)  # noqa: E731
        for t in rng.sample(bank.INFERENCES, need.pop("open_domain")):
            self.add_inference(t, owners())
        multi = need.pop("multi_hop")
        n_chains = min(3, multi // 2)
        for t in rng.sample(bank.CHAINS, n_chains):
            self.add_chain(t, owners())
        for t in rng.sample(bank.COLLECTIONS, multi - n_chains):
            self.add_collection(t, owners())
        for t in rng.sample(bank.CHANGES, 3):
            qtype = rng.choice(["single_hop", "temporal"])
            need[qtype] -= 1
            self.add_change(t, owners(), qtype)
        kinds = (
            ["single_hop"] * need["single_hop"]
            + ["temporal"] * need["temporal"]
            + [None] * DISTRACTOR_EVENTS
        )
        rng.shuffle(kinds)
        pairs = [(t, n) for t in bank.EVENTS for n in self.names]
        if len(kinds) > len(pairs):
            raise RuntimeError(f"{self.cid}: the bank has too few events")
        for qtype, (t, owner) in zip(kinds, rng.sample(pairs, len(kinds)), strict=True):
            self.add_event(t, owner, qtype)

    # -- rendering --
    def build(self) -> Conversation:
        self.plan()
        rng = self.rng
        sessions = []
        tag_to_turn: dict[str, str] = {}
        small_talk, openers, closers = (
            Deck(rng, bank.SMALL_TALK),
            Deck(rng, bank.OPENERS),
            Deck(rng, bank.CLOSERS),
        )
        for s in range(self.n_sessions):
            a, b = self.names if rng.random() < 0.5 else self.names[::-1]
            blocks: list[list[tuple[str, str, Optional[str]]]] = []
            for m in (m for m in self.moments if m.session == s):
                persons = {"P": m.owner, "Q": self._other(m.owner)}
                blocks.append(
                    [(persons[ln.role], fill(ln.text, {"P": m.owner}), ln.tag) for ln in m.lines]
                )
            for _ in range(rng.choice([2, 2, 3, 3, 4])):
                x, y = (a, b) if rng.random() < 0.5 else (b, a)
                exchange = small_talk.deal()
                blocks.append(
                    [((x, y)[i % 2], vary(rng, text), None) for i, text in enumerate(exchange)]
                )
            for _, owner, topic in (c for c in self.callbacks if c[0] == s):
                asker = self._other(owner)
                blocks.append(
                    [
                        (asker, fill(rng.choice(bank.CALLBACK_ASKS), {"topic": topic}), None),
                        (owner, rng.choice(bank.CALLBACK_REPLIES), None),
                    ]
                )
            rng.shuffle(blocks)
            opener, closer = openers.deal(), closers.deal()
            turns = [
                (a, fill(opener[0], {"X": a, "Y": b}), None),
                (b, fill(opener[1], {"X": a, "Y": b}), None),
            ]
            for block in blocks:
                turns.extend(block)
            turns += [
                (a, fill(closer[0], {"X": a, "Y": b}), None),
                (b, fill(closer[1], {"X": a, "Y": b}), None),
            ]
            sid = f"S{s + 1}"
            session_turns = []
            for i, (spk, text, tag) in enumerate(turns, 1):
                if tag:
                    tag_to_turn[tag] = f"{sid}:{i}"
                session_turns.append(Turn(f"{sid}:{i}", spk, text))
            sessions.append(
                Session(sid, render_session_date(self.times[s], self.style), tuple(session_turns))
            )
        order = {t.turn_id: i for i, t in enumerate(t for s in sessions for t in s.turns)}
        questions = []
        for i, pq in enumerate(self.questions, 1):
            evidence = tuple(sorted((tag_to_turn[t] for t in pq.tags), key=order.__getitem__))
            questions.append(
                Question(f"{self.cid}-q{i:02d}", pq.question, pq.answer, pq.type, evidence)
            )
        rng.shuffle(questions)
        return Conversation(self.cid, self.names, tuple(sessions), tuple(questions))


def generate(seed: int = SEED, n_conversations: int = N_CONVERSATIONS) -> list[Conversation]:
    rng = random.Random(seed)
    names = list(bank.NAMES)
    rng.shuffle(names)
    if 2 * n_conversations > len(names):
        raise ValueError(f"the bank has names for {len(names) // 2} conversations")
    return [
        LongConversationBuilder(rng, i + 1, (names[2 * i], names[2 * i + 1])).build()
        for i in range(n_conversations)
    ]


# --- what the set looks like ---------------------------------------------------------------------


def overlap_stats(conversations: list[Conversation]) -> dict[str, float]:
    """How much questions copy their evidence: shares of questions that repeat a rare evidence word.

    A word is rare when at most 3 lines of the conversation hold it; speaker names are left out
    (every question names its person). People asking about a chat reuse its key noun often but
    not always; a set where every question copies a rare word would flatter keyword search.
    """
    out: Counter = Counter()
    for conv in conversations:
        lines = conv.lines(dated=False)
        df: Counter = Counter(w for line in lines for w in content_words(line))
        names = {w for n in conv.speakers for w in content_words(n)}
        for q in conv.questions:
            words = content_words(q.question) - names
            evidence_words = set().union(
                *(content_words(lines[n - 1]) for n in conv.evidence_lines(q))
            )
            shared = words & evidence_words
            out["questions"] += 1
            out["shares_any"] += bool(shared)
            out["shares_rare"] += bool({w for w in shared if df[w] <= 3})
    n = out["questions"] or 1
    return {
        "questions": out["questions"],
        "share_any_word": out["shares_any"] / n,
        "share_rare_word": out["shares_rare"] / n,
    }


def describe(conversations: list[Conversation]) -> str:
    turns = sum(c.turn_count for c in conversations)
    types = Counter(q.type for c in conversations for q in c.questions)
    n = sum(types.values())
    photos = sum(
        "[shares a photo of" in t.text for c in conversations for s in c.sessions for t in s.turns
    )
    stats = overlap_stats(conversations)
    lines = [
        f"{len(conversations)} conversations, {turns} turns "
        f"({min(c.turn_count for c in conversations)}-"
        f"{max(c.turn_count for c in conversations)} each), "
        f"{min(len(c.sessions) for c in conversations)}-"
        f"{max(len(c.sessions) for c in conversations)} sessions, {photos} photos, {n} questions",
        "types: " + ", ".join(f"{t} {types[t]} ({types[t] / n:.0%})" for t in QUESTION_TYPES),
        f"questions sharing any content word with their evidence {stats['share_any_word']:.0%}, "
        f"a rare one {stats['share_rare_word']:.0%}",
    ]
    return "\n".join(lines)


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(LONG_DATASET))
    parser.add_argument(
        "--check", action="store_true", help="compare with the committed file instead of writing"
    )
    parser.add_argument(
        "--stats", action="store_true", help="print what the generated set looks like"
    )
    args = parser.parse_args(argv)
    conversations = generate()
    if args.stats:
        print(describe(conversations))
        return 0
    if args.check:
        if load_agentmem(args.out) != conversations:
            print(
                f"{args.out} differs from the generator's output; "
                "run python -m evals.make_long_dataset",
                file=sys.stderr,
            )
            return 1
        print(f"{args.out} is up to date")
        return 0
    dump_agentmem(conversations, args.out)
    print(f"wrote {args.out}\n{describe(conversations)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
