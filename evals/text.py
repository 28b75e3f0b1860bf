"""Content keywords, the yardstick for "this question shares no words with its evidence".

Deliberately close to what a full-text index does (lowercase, word tokens, stop words dropped,
light suffix stemming), so a paraphrase question that passes here gives keyword search
nothing to match on.
"""

from __future__ import annotations

import re

_WORD = re.compile(r"[a-z0-9]+")

STOP_WORDS = frozenset(
    """
    a about above after again against all am an and any are aren as at be because been before being
    below between both but by can cannot could did didn do does doesn doing don down during each few
    for from further had hadn has hasn have haven having he her here hers herself him himself his
    how i if in into is isn it its itself just let ll me more most my myself no nor not now of off
    on once only or other ought our ours ourselves out over own re s same she should shouldn so some
    such t than that the their theirs them themselves then there these they this those through to
    too under until up very ve was wasn we were weren what when where which while who whom why will
    with won would wouldn you your yours yourself yourselves d m o y ain also get got go going one
    two lot really yeah oh ok okay well still even much many im ive id ill youre youve youd theyre
    theyve weve were hes shes thats whats theres its dont didnt doesnt cant couldnt wont wouldnt
    isnt wasnt arent havent hasnt lets
    """.split()
)


def stem(word: str) -> str:
    # Strip the inflections a BM25 analyser would also fold; irregular forms (ran/run) stay apart
    # there too.
    for suffix in ("ing", "ed", "es", "s", "ly"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            word = word[: -len(suffix)]
            break
    if len(word) > 3 and word[-1] == word[-2] and word[-1] not in "aeiouls":
        word = word[:-1]  # "stopp(ed)" -> "stop", "plann(ing)" -> "plan"
    if word.endswith("e") and len(word) > 3:
        word = word[:-1]  # "move"/"moved" -> "mov"
    return word


def content_words(text: str) -> frozenset[str]:
    """Stemmed, lowercased word tokens of `text` minus stop words."""
    return frozenset(
        stem(w) for w in _WORD.findall(text.lower().replace("'", "")) if w not in STOP_WORDS
    )


def shared_content_words(a: str, b: str) -> frozenset[str]:
    return content_words(a) & content_words(b)
