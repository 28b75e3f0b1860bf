"""notebooks/01_quickstart.ipynb is committed without outputs and runs top to bottom."""

from __future__ import annotations

from pathlib import Path

import nbclient
import nbformat
import pytest

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "01_quickstart.ipynb"


def test_committed_without_outputs():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and all(not c.outputs and c.execution_count is None for c in code)


@pytest.mark.slow
def test_executes_and_shows_the_hidden_reminder():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbclient.NotebookClient(
        nb,
        timeout=300,
        kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOK.parent)}},
    ).execute()
    text = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert "conflict; current updated_at is" in text
    assert "- Lives in Porto" in text
    # The vector leg must find the dog line for a question sharing no keyword with it.
    vector_part = text.split("vector\n", 1)[1]
    assert "border collie" in vector_part.splitlines()[0]
    # The stored model input holds a system reminder that the visible transcript does not.
    model_input, transcript = text.split("visible transcript:", 1)
    assert "Miso chewed my running shoes" in model_input
    assert "Miso chewed" not in transcript
    assert "replay output identical: True" in text
