"""The side-by-side ablation runner: one ingest, several ranking variants, harness reports."""

from __future__ import annotations

import pytest

from agentmem_server.services import recall
from evals import recall_study


@pytest.mark.slow
def test_rank_variants_run_side_by_side_on_one_ingest(tmp_path):
    rows = recall_study.run_study(
        ["raw"],
        ["plain", "spread"],
        ["short", "long"],
        ["hybrid"],
        tmp_path,
        settings={"embedding_model": "hash:384"},
        max_conversations=1,
    )
    assert [(r["rank"], r["set"]) for r in rows] == [
        ("plain", "short"),
        ("spread", "short"),
        ("plain", "long"),
        ("spread", "long"),
    ]
    for r in rows:
        assert 0.0 < r["overall"]["top_recall@5"] <= 1.0 and r["by_type"]
        assert (tmp_path / f"raw-{r['rank']}-{r['set']}" / "report.json").exists()
    assert recall.SPREAD_HYBRID is True, "the switch is put back after each pass"
    assert "plain" in recall_study.summary_line(rows)


def test_unknown_variants_are_named():
    with pytest.raises(ValueError, match="nope"):
        recall_study.run_study(["raw"], ["nope"], ["short"], ["hybrid"], None)


KEY = "[7 May 2023] Ana: did you ever get to see the harbour paintings in the end?\nBen: Yes!"


def test_tail_keys_keep_the_speaker_and_the_last_words_of_the_previous_line():
    tail4 = recall_study._previous_tail(4)
    assert tail4(KEY) == "[7 May 2023] Ana: paintings in the end?\nBen: Yes!"
    assert recall_study._previous_tail(40)(KEY) == KEY, "a short previous line stays whole"
    assert tail4("Ben: one line only") == "Ben: one line only"


def test_short_keys_keep_the_previous_line_only_for_short_lines():
    short2 = recall_study._previous_if_short(2)
    assert short2(KEY) == KEY, "'Yes!' is one word: the previous turn is what finds it"
    long_reply = KEY.replace("Ben: Yes!", "Ben: Yes, last weekend with my sister.")
    assert short2(long_reply) == "[7 May 2023] Ben: Yes, last weekend with my sister."


def test_mixed_keys_embed_each_line_apart_and_mix_the_vectors():
    import asyncio

    import numpy as np

    from agentmem_server.embedding import EmbeddingBatcher
    from agentmem_server.embedding.hashing import HashEmbedder

    async def both(texts):
        batcher = EmbeddingBatcher(HashEmbedder(64))
        try:
            with recall_study._mixed_embedding(0.5):
                mixed = await batcher.embed(texts)
            plain = await batcher.embed(["[7 May 2023] Ana: hi", "[7 May 2023] Ben: yo", "solo"])
        finally:
            await batcher.aclose()
        return mixed, plain

    mixed, plain = asyncio.run(both(["[7 May 2023] Ana: hi\nBen: yo", "solo"]))
    want = plain[0] + plain[1]
    np.testing.assert_allclose(mixed[0], want / np.linalg.norm(want), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(mixed[1], plain[2], rtol=1e-6)
