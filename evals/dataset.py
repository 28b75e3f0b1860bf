"""The eval dataset format and its loaders (our JSONL, the published LoCoMo JSON layout).

A conversation is ingested as one archival block in its own agent scope, one line per turn:
`[session date] Speaker: text`. Line numbers are therefore known before ingestion, and a
question's evidence turn ids map to the line numbers a recalled chunk must cover.

    convs = load_dataset()                          # our committed set
    convs = load_dataset("locomo10.json", format="locomo")
    lines = convs[0].lines(); evidence = convs[0].evidence_lines(convs[0].questions[0])
"""

from __future__ import annotations

import json
import re
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Optional

DATA_DIR = Path(__file__).resolve().parent / "data"
DEFAULT_DATASET = DATA_DIR / "conversations.jsonl"
LONG_DATASET = DATA_DIR / "long_conversations.jsonl"
NAMED_DATASETS = {"short": DEFAULT_DATASET, "long": LONG_DATASET}
"""Our committed sets by name: `load_dataset("long")`, `--dataset long`."""

QUESTION_TYPES = ("single_fact", "multi_hop", "temporal", "paraphrase", "names_numbers", "updated")
"""The question types of our short dataset (LoCoMo questions keep LoCoMo's categories)."""
LONG_QUESTION_TYPES = ("single_hop", "temporal", "multi_hop", "open_domain")
"""The question types of our long-conversation dataset, named as LoCoMo's categories are."""

LOCOMO_CATEGORIES = {
    1: "multi_hop",
    2: "temporal",
    3: "open_domain",
    4: "single_hop",
    5: "adversarial",
}
"""LoCoMo's numeric `category` as released, named as in its evaluation code."""

DatasetFormat = Literal["agentmem", "locomo"]


@dataclass(frozen=True)
class Turn:
    turn_id: str
    speaker: str
    text: str


@dataclass(frozen=True)
class Session:
    session_id: str
    date: str
    """Shown verbatim in every line of the session, so the retriever sees it as text."""
    turns: tuple[Turn, ...]


@dataclass(frozen=True)
class Question:
    question_id: str
    question: str
    answer: str
    type: str
    evidence: tuple[str, ...]
    """Turn ids whose lines hold what is needed to answer."""


@dataclass(frozen=True)
class Conversation:
    conversation_id: str
    speakers: tuple[str, ...]
    sessions: tuple[Session, ...]
    questions: tuple[Question, ...] = ()
    _line_of: dict = field(default=None, init=False, repr=False, compare=False)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        line_of: dict[str, int] = {}
        n = 0
        for session in self.sessions:
            for turn in session.turns:
                n += 1
                if turn.turn_id in line_of:
                    raise ValueError(f"{self.conversation_id}: duplicate turn id {turn.turn_id!r}")
                line_of[turn.turn_id] = n
        object.__setattr__(self, "_line_of", line_of)

    @property
    def turn_count(self) -> int:
        return len(self._line_of)

    def line_number(self, turn_id: str) -> int:
        """1-based line of a turn in the conversation's archival block."""
        return self._line_of[turn_id]

    def has_turn(self, turn_id: str) -> bool:
        return turn_id in self._line_of

    def evidence_lines(self, question: Question) -> frozenset[int]:
        return frozenset(self._line_of[t] for t in question.evidence)

    def session_lines(self, session: Session, *, dated: bool = True) -> list[str]:
        return [
            format_line(session.date if dated else None, t.speaker, t.text) for t in session.turns
        ]

    def lines(self, *, dated: bool = True) -> list[str]:
        return [line for s in self.sessions for line in self.session_lines(s, dated=dated)]


def format_line(date: Optional[str], speaker: str, text: str) -> str:
    """`[date] Speaker: text`; without a date (an ablation only) `Speaker: text`."""
    # One turn must stay one line, or every later evidence line number would shift.
    flat = " ".join(text.split())
    return f"[{date}] {speaker}: {flat}" if date is not None else f"{speaker}: {flat}"


def load_dataset(
    path: Optional[str | Path] = None,
    format: DatasetFormat = "agentmem",
    *,
    include_adversarial: bool = False,
) -> list[Conversation]:
    """Load conversations with their questions; no `path` means our committed short dataset, and
    a name of `NAMED_DATASETS` ("short", "long") one of our committed sets."""
    if format == "agentmem":
        if isinstance(path, str) and path in NAMED_DATASETS:
            path = NAMED_DATASETS[path]
        return load_agentmem(path or DEFAULT_DATASET)
    if format == "locomo":
        if path is None:
            raise ValueError(
                "the LoCoMo format needs a path: the data is not shipped, pass --dataset PATH"
            )
        return load_locomo(path, include_adversarial=include_adversarial)
    raise ValueError(f"unknown dataset format {format!r}; expected 'agentmem' or 'locomo'")


# --- our JSONL -------------------------------------------------------------------------------


def load_agentmem(path: str | Path) -> list[Conversation]:
    """One JSON object per line, one conversation each (see evals/README.md)."""
    conversations = []
    with open(path, encoding="utf-8") as fh:
        for lineno, raw in enumerate(fh, 1):
            if not raw.strip():
                continue
            try:
                conversations.append(conversation_from_dict(json.loads(raw)))
            except (KeyError, TypeError, ValueError) as exc:
                raise ValueError(
                    f"{path}:{lineno}: not a valid conversation record: {exc}"
                ) from exc
    return conversations


def conversation_from_dict(obj: dict) -> Conversation:
    sessions = tuple(
        Session(
            session_id=s["session_id"],
            date=s["date"],
            turns=tuple(Turn(t["turn_id"], t["speaker"], t["text"]) for t in s["turns"]),
        )
        for s in obj["sessions"]
    )
    questions = tuple(
        Question(
            q["question_id"],
            q["question"],
            str(q.get("answer", "")),
            q["type"],
            tuple(q["evidence"]),
        )
        for q in obj.get("questions", [])
    )
    conv = Conversation(obj["conversation_id"], tuple(obj.get("speakers", ())), sessions, questions)
    for q in questions:
        missing = [t for t in q.evidence if not conv.has_turn(t)]
        if missing or not q.evidence:
            raise ValueError(f"question {q.question_id} cites unknown evidence {missing or '[]'}")
    return conv


def conversation_to_dict(conv: Conversation) -> dict:
    return {
        "conversation_id": conv.conversation_id,
        "speakers": list(conv.speakers),
        "sessions": [
            {
                "session_id": s.session_id,
                "date": s.date,
                "turns": [
                    {"turn_id": t.turn_id, "speaker": t.speaker, "text": t.text} for t in s.turns
                ],
            }
            for s in conv.sessions
        ],
        "questions": [
            {
                "question_id": q.question_id,
                "type": q.type,
                "question": q.question,
                "answer": q.answer,
                "evidence": list(q.evidence),
            }
            for q in conv.questions
        ],
    }


def dump_agentmem(conversations: Iterable[Conversation], path: str | Path) -> None:
    with open(path, "w", encoding="utf-8", newline="\n") as fh:
        for conv in conversations:
            fh.write(json.dumps(conversation_to_dict(conv), ensure_ascii=False) + "\n")


# --- LoCoMo ----------------------------------------------------------------------------------

_DIA_ID = re.compile(r"D\s*:?\s*(\d+)\s*:\s*(\d+)")
_SESSION_KEY = re.compile(r"^session_(\d+)$")


def normalize_evidence(raw: Sequence[str] | str) -> list[str]:
    """Canonical `D<session>:<turn>` ids from LoCoMo's evidence, repairing its known typos.

    The released file has ids joined in one string (`"D8:6; D9:17"`), an extra colon
    (`"D:11:26"`) and zero-padded turns (`"D30:05"`); taken literally they would silently drop
    evidence and make questions look unanswerable.
    """
    items = [raw] if isinstance(raw, str) else list(raw)
    out: list[str] = []
    for item in items:
        for a, b in _DIA_ID.findall(str(item)):
            dia = f"D{int(a)}:{int(b)}"
            if dia not in out:
                out.append(dia)
    return out


def load_locomo(path: str | Path, *, include_adversarial: bool = False) -> list[Conversation]:
    """Read the published LoCoMo JSON (a list of samples) from a path the user supplies.

    Category 5 (adversarial: the answer is not in the conversation) is excluded by default because
    it has no evidence to retrieve. Questions whose evidence ids all fail to resolve are dropped
    with a warning rather than scored as misses.
    """
    with open(path, encoding="utf-8") as fh:
        samples = json.load(fh)
    if isinstance(samples, dict):
        samples = [samples]
    conversations = []
    dropped = 0
    for sample in samples:
        conv_raw = sample["conversation"]
        numbers = sorted(
            int(m.group(1))
            for key in conv_raw
            if (m := _SESSION_KEY.match(key)) and isinstance(conv_raw[key], list)
        )
        sessions = []
        for n in numbers:
            turns = []
            for i, t in enumerate(conv_raw[f"session_{n}"], 1):
                ids = normalize_evidence(t.get("dia_id", ""))
                turn_id = ids[0] if ids else f"D{n}:{i}"
                text = t.get("text", "")
                if t.get("blip_caption"):
                    # The shared photo is part of what was said; LoCoMo's own baselines inline
                    # it too.
                    text = f"{text} [shares a photo of {t['blip_caption']}]"
                turns.append(Turn(turn_id, t["speaker"], text))
            sessions.append(
                Session(f"D{n}", str(conv_raw.get(f"session_{n}_date_time", "")), tuple(turns))
            )
        speakers = tuple(s for s in (conv_raw.get("speaker_a"), conv_raw.get("speaker_b")) if s)
        sample_id = str(sample.get("sample_id", f"locomo-{len(conversations) + 1}"))
        shell = Conversation(sample_id, speakers, tuple(sessions))
        questions = []
        for qi, qa in enumerate(sample.get("qa", []), 1):
            category = int(qa.get("category", 0))
            if category == 5 and not include_adversarial:
                continue
            evidence = tuple(
                e for e in normalize_evidence(qa.get("evidence", [])) if shell.has_turn(e)
            )
            if not evidence:
                dropped += 1
                continue
            answer = qa.get("answer", qa.get("adversarial_answer", ""))
            questions.append(
                Question(
                    f"{sample_id}-q{qi:03d}",
                    str(qa["question"]),
                    str(answer),
                    LOCOMO_CATEGORIES.get(category, f"category_{category}"),
                    evidence,
                )
            )
        conversations.append(Conversation(sample_id, speakers, tuple(sessions), tuple(questions)))
    if dropped:
        warnings.warn(
            f"{path}: {dropped} LoCoMo questions had no resolvable evidence and were skipped",
            stacklevel=2,
        )
    return conversations
