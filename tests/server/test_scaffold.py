"""A line unit's scaffold (`[date] Speaker:` without the text) and its cosine to the unit."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from agentmem_server.chunking import Chunk
from agentmem_server.embedding import HashEmbedder
from agentmem_server.scaffold import scaffold_of, with_scaffolds


def test_the_scaffold_keeps_each_lines_date_and_speaker_and_drops_what_was_said() -> None:
    key = "[8 May 2023] Ana: Hey Bo! How was it?\nBo: Lovely: we went kayaking yesterday."
    assert scaffold_of(key) == "[8 May 2023] Ana:\nBo:"
    assert scaffold_of("Bo Smith: fine") == "Bo Smith:"


def test_text_that_is_not_a_chat_turn_has_no_scaffold() -> None:
    assert scaffold_of("Dr. Mary O'Neil: fine") == "Dr. Mary O'Neil:"
    # Numbered labels would each be a scaffold of its own: an embedding more per line.
    assert scaffold_of("fact 3: the third item") is None
    assert scaffold_of("The plan is simple: do it") is None  # a sentence, not a speaker
    assert scaffold_of("see https://example.com/a: it moved") is None
    assert scaffold_of("The plan is simple.\nNothing here names a speaker") is None
    assert scaffold_of("[8 May 2023] no speaker here") is None


async def test_each_unit_gets_its_cosine_to_its_scaffold_each_scaffold_embedded_once() -> None:
    model = HashEmbedder(64)
    asked: list[list[str]] = []

    async def embed(texts: Sequence[str]) -> np.ndarray:
        asked.append(list(texts))
        return model.embed(texts)

    keys = ["[8 May 2023] Ana: hi\nBo: hello", "[8 May 2023] Ana: so\nBo: well", "plain words"]
    chunks = [Chunk("t", i, i, 0, k) for i, k in enumerate(keys, start=1)] + [Chunk("c", 4, 4)]
    vectors = model.embed([*keys, "c"])
    out = await with_scaffolds(chunks, vectors, embed)
    assert asked == [["[8 May 2023] Ana:\nBo:"]]
    scaffold = model.embed(["[8 May 2023] Ana:\nBo:"])[0]
    assert out[0].scaffold is not None and out[1].scaffold is not None
    assert abs(out[0].scaffold - float(vectors[0] @ scaffold)) < 1e-6
    assert abs(out[1].scaffold - float(vectors[1] @ scaffold)) < 1e-6
    assert out[0].scaffold > 0.3  # shares date and speakers with its unit
    assert out[2] == chunks[2] and out[3] == chunks[3]  # no scaffold, a chunk: untouched
