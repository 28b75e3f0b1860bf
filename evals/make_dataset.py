"""Generate our committed eval dataset, deterministically, from the hand-written bank in `_bank.py`.

    python -m evals.make_dataset            # rewrites evals/data/conversations.jsonl
    python -m evals.make_dataset --check    # exit 1 if the committed file differs

Each conversation is a chat between two friends over several sessions days or weeks apart:
openers, small talk, facts about their lives with reactions, and goodbyes. Facts are drawn from
the bank with randomly filled slots; some are asked about (the questions), the rest stay as
distractors. Nothing here comes from a third-party dataset.
"""

from __future__ import annotations

import argparse
import random
import re
import sys
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Optional

from . import _bank as bank
from .dataset import (
    DEFAULT_DATASET,
    Conversation,
    Question,
    Session,
    Turn,
    dump_agentmem,
    load_agentmem,
)
from .text import shared_content_words

SEED = 20240611
N_CONVERSATIONS = 24
QUESTIONS_PER_CONVERSATION = {
    "single_fact": 3,
    "multi_hop": 2,
    "temporal": 2,
    "paraphrase": 3,
    "names_numbers": 2,
    "updated": 2,
}
DISTRACTOR_FACTS = 6
_AUTHORS = dict(bank.BOOKS)
_SLOT = re.compile(r"\{(\w+)\}")


def render_date(d: date) -> str:
    return f"{d.day} {bank.MONTHS[d.month - 1]} {d.year}"


@dataclass
class Line:
    role: str  # "P" (fact owner) or "Q" (the friend), resolved to names per fact
    text: str
    tag: Optional[str] = None  # evidence tag a question refers to


@dataclass
class Moment:
    session: int
    owner: str
    lines: list[Line]


@dataclass
class PendingQuestion:
    type: str
    question: str
    answer: str
    tags: list[str]
    owner: str


@dataclass
class Plan:
    moments: list[Moment] = field(default_factory=list)
    questions: list[PendingQuestion] = field(default_factory=list)


def fill(template: str, values: dict[str, str]) -> str:
    return _SLOT.sub(lambda m: values[m.group(1)], template)


def pick_slots(rng: random.Random, slots: dict[str, list[str]]) -> dict[str, str]:
    values: dict[str, str] = {}
    used: dict[int, set[str]] = {}
    for name, options in slots.items():
        # Slots sharing one list (old/new city, old/new car) must differ, or an "update" changes
        # nothing.
        taken = used.setdefault(id(options), set())
        values[name] = rng.choice([o for o in options if o not in taken])
        taken.add(values[name])
    if "book" in values:
        values["author"] = _AUTHORS[values["book"]]
    return values


def statement(rng: random.Random, tone: str, text: str, tag: Optional[str]) -> list[Line]:
    """The owner's evidence turn, the friend's reaction, sometimes the owner's reply to it."""
    lines = [Line("P", text, tag), Line("Q", rng.choice(bank.REACTIONS[tone]))]
    if rng.random() < 0.5:
        lines.append(Line("P", rng.choice(bank.FOLLOW_UPS[tone])))
    return lines


class ConversationBuilder:
    def __init__(self, rng: random.Random, index: int, names: tuple[str, str]):
        self.rng = rng
        self.cid = f"am-{index:02d}"
        self.names = names
        self.n_sessions = rng.choice([6, 7, 7, 8])
        start = date(2022, 1, 3) + timedelta(days=rng.randrange(0, 800))
        self.dates = [start]
        for _ in range(self.n_sessions - 1):
            self.dates.append(self.dates[-1] + timedelta(days=rng.randrange(3, 25)))
        self.plan = Plan()
        self.groups: dict[str, set[str]] = {n: set() for n in names}
        self.keys: set[str] = set()
        self.tag_counter = 0

    def _tag(self) -> str:
        self.tag_counter += 1
        return f"t{self.tag_counter}"

    def _choose(
        self, templates: list[dict], owner: str, *, unique_key: bool = True
    ) -> Optional[dict]:
        options = [
            t
            for t in templates
            if t["group"] not in self.groups[owner]
            and (not unique_key or t["key"] not in self.keys)
        ]
        if not options:
            return None
        t = self.rng.choice(options)
        self.groups[owner].add(t["group"])
        if unique_key:
            self.keys.add(t["key"])
        return t

    def _persons(self, owner: str) -> dict[str, str]:
        other = self.names[1] if owner == self.names[0] else self.names[0]
        return {"P": owner, "Q": other}

    def add_simple(self, qtype: str, templates: list[dict], owner: str, ask: bool) -> bool:
        t = self._choose(templates, owner, unique_key=ask)
        if t is None:
            return False
        values = {**pick_slots(self.rng, t.get("slots", {})), **self._persons(owner)}
        tag = self._tag()
        session = self.rng.randrange(self.n_sessions)
        text = fill(self.rng.choice(t["say"]), values)
        self.plan.moments.append(Moment(session, owner, statement(self.rng, t["tone"], text, tag)))
        if ask:
            q = fill(self.rng.choice(t["ask"]), values)
            self.plan.questions.append(
                PendingQuestion(qtype, q, fill(t["answer"], values), [tag], owner)
            )
        return True

    def add_temporal(self, owner: str, ask: bool) -> bool:
        t = self._choose(bank.TEMPORAL, owner, unique_key=ask)
        if t is None:
            return False
        values = {**pick_slots(self.rng, t.get("slots", {})), **self._persons(owner)}
        when, offset = self.rng.choice(bank.WHENS)
        values["when"] = when
        session = self.rng.randrange(self.n_sessions)
        tag = self._tag()
        text = fill(self.rng.choice(t["say"]), values)
        self.plan.moments.append(Moment(session, owner, statement(self.rng, t["tone"], text, tag)))
        if ask:
            answer = render_date(self.dates[session] + timedelta(days=offset))
            q = fill(self.rng.choice(t["ask"]), values)
            self.plan.questions.append(PendingQuestion("temporal", q, answer, [tag], owner))
        return True

    def _two_sessions(self) -> tuple[int, int]:
        first = self.rng.randrange(self.n_sessions - 2)
        return first, self.rng.randrange(first + 1, self.n_sessions)

    def add_updated(self, owner: str) -> bool:
        t = self._choose(bank.UPDATED, owner)
        if t is None:
            return False
        values = {**pick_slots(self.rng, t["slots"]), **self._persons(owner)}
        s1, s2 = self._two_sessions()
        tag = self._tag()
        self.plan.moments.append(
            Moment(s1, owner, statement(self.rng, "neutral", fill(t["say1"][0], values), None))
        )
        self.plan.moments.append(
            Moment(s2, owner, statement(self.rng, "neutral", fill(t["say2"][0], values), tag))
        )
        q = fill(self.rng.choice(t["ask"]), values)
        self.plan.questions.append(
            PendingQuestion("updated", q, fill(t["answer"], values), [tag], owner)
        )
        return True

    def add_multi_hop(self, owner: str) -> bool:
        t = self._choose(bank.MULTI_HOP, owner)
        if t is None:
            return False
        values = {**pick_slots(self.rng, t["slots"]), **self._persons(owner)}
        s1, s2 = self._two_sessions()
        tags = [self._tag(), self._tag()]
        for session, by, say, tag in (
            (s1, t["by1"], t["say1"], tags[0]),
            (s2, t["by2"], t["say2"], tags[1]),
        ):
            lines = statement(self.rng, "neutral", fill(say, values), tag)
            if by == "Q":
                # The friend says it; flip the roles so the evidence turn is spoken by them.
                lines = [Line("Q" if ln.role == "P" else "P", ln.text, ln.tag) for ln in lines]
            self.plan.moments.append(Moment(session, owner, lines))
        q = fill(self.rng.choice(t["ask"]), values)
        self.plan.questions.append(
            PendingQuestion("multi_hop", q, fill(t["answer"], values), tags, owner)
        )
        return True

    def plan_facts(self) -> None:
        quota = QUESTIONS_PER_CONVERSATION
        adders = {
            "single_fact": lambda o: self.add_simple("single_fact", bank.SINGLE_FACT, o, True),
            "names_numbers": lambda o: self.add_simple(
                "names_numbers", bank.NAMES_NUMBERS, o, True
            ),
            "paraphrase": lambda o: self.add_simple("paraphrase", bank.PARAPHRASE, o, True),
            "temporal": lambda o: self.add_temporal(o, True),
            "updated": self.add_updated,
            "multi_hop": self.add_multi_hop,
        }
        for qtype, n in quota.items():
            for i in range(n):
                owner = self.names[(i + self.rng.randrange(2)) % 2]
                if not adders[qtype](owner):
                    other = self.names[1] if owner == self.names[0] else self.names[0]
                    if not adders[qtype](other):
                        raise RuntimeError(f"{self.cid}: the bank has too few {qtype} facts")
        for _ in range(DISTRACTOR_FACTS):
            owner = self.rng.choice(self.names)
            kind = self.rng.choice(["single", "numbers", "temporal"])
            if kind == "temporal":
                self.add_temporal(owner, ask=False)
            else:
                self.add_simple(
                    "",
                    bank.SINGLE_FACT if kind == "single" else bank.NAMES_NUMBERS,
                    owner,
                    ask=False,
                )

    def _small_talk(self, first: str, second: str, values: dict[str, str]) -> list[tuple[str, str]]:
        exchange = self.rng.choice(bank.SMALL_TALK)
        speakers = [first, second, first]
        return [(speakers[i], fill(text, values)) for i, text in enumerate(exchange)]

    def build(self) -> Conversation:
        self.plan_facts()
        rng = self.rng
        sessions = []
        tag_to_turn: dict[str, str] = {}
        for s in range(self.n_sessions):
            a, b = self.names if rng.random() < 0.5 else self.names[::-1]
            values = {
                "X": a,
                "Y": b,
                "show": rng.choice(bank.SHOWS),
                "month": bank.MONTHS[self.dates[s].month - 1],
            }
            turns: list[tuple[str, str, Optional[str]]] = []

            def add(pairs: list[tuple[str, str]], turns: list = turns) -> None:
                turns.extend((spk, text, None) for spk, text in pairs)

            opener = rng.choice(bank.OPENERS)
            add([(a, fill(opener[0], values)), (b, fill(opener[1], values))])
            blocks: list[list[tuple[str, str, Optional[str]]]] = []
            for m in (m for m in self.plan.moments if m.session == s):
                persons = self._persons(m.owner)
                blocks.append([(persons[ln.role], ln.text, ln.tag) for ln in m.lines])
            for _ in range(rng.choice([1, 2, 2, 3])):
                x, y = (a, b) if rng.random() < 0.5 else (b, a)
                blocks.append(
                    [
                        (spk, text, None)
                        for spk, text in self._small_talk(x, y, {**values, "X": x, "Y": y})
                    ]
                )
            rng.shuffle(blocks)
            for block in blocks:
                turns.extend(block)
            closer = rng.choice(bank.CLOSERS)
            add([(a, fill(closer[0], values)), (b, fill(closer[1], values))])
            sid = f"S{s + 1}"
            session_turns = []
            for i, (spk, text, tag) in enumerate(turns, 1):
                turn_id = f"{sid}:{i}"
                if tag:
                    tag_to_turn[tag] = turn_id
                session_turns.append(Turn(turn_id, spk, text))
            sessions.append(Session(sid, render_date(self.dates[s]), tuple(session_turns)))

        questions = []
        for i, pq in enumerate(self.plan.questions, 1):
            evidence = tuple(sorted((tag_to_turn[t] for t in pq.tags), key=_turn_order))
            questions.append(
                Question(f"{self.cid}-q{i:02d}", pq.question, pq.answer, pq.type, evidence)
            )
        conv = Conversation(self.cid, self.names, tuple(sessions), tuple(questions))
        check_paraphrases(conv)
        return conv


def _turn_order(turn_id: str) -> tuple[int, int]:
    s, t = turn_id[1:].split(":")
    return int(s), int(t)


def check_paraphrases(conv: Conversation) -> None:
    """Fail loudly if a paraphrase question shares a content word with its evidence line."""
    lines = conv.lines()
    for q in conv.questions:
        if q.type != "paraphrase":
            continue
        for n in conv.evidence_lines(q):
            shared = shared_content_words(q.question, lines[n - 1])
            if shared:
                raise ValueError(
                    f"{q.question_id}: paraphrase shares {sorted(shared)} with line {n}: "
                    f"{lines[n - 1]!r}"
                )


def generate(seed: int = SEED, n_conversations: int = N_CONVERSATIONS) -> list[Conversation]:
    rng = random.Random(seed)
    names = list(bank.NAMES)
    rng.shuffle(names)
    if 2 * n_conversations > len(names):
        raise ValueError(f"the bank has names for {len(names) // 2} conversations")
    return [
        ConversationBuilder(rng, i + 1, (names[2 * i], names[2 * i + 1])).build()
        for i in range(n_conversations)
    ]


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(DEFAULT_DATASET))
    parser.add_argument(
        "--check", action="store_true", help="compare with the committed file instead of writing"
    )
    args = parser.parse_args(argv)
    conversations = generate()
    if args.check:
        committed = load_agentmem(args.out)
        if committed != conversations:
            print(
                f"{args.out} differs from the generator's output; run python -m evals.make_dataset",
                file=sys.stderr,
            )
            return 1
        print(f"{args.out} is up to date")
        return 0
    dump_agentmem(conversations, args.out)
    turns = sum(c.turn_count for c in conversations)
    questions = sum(len(c.questions) for c in conversations)
    print(
        f"wrote {args.out}: {len(conversations)} conversations, {turns} turns, {questions} "
        "questions"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
