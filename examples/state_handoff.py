"""Two agents hand work over through agentmem keyed state.

    export AGENTMEM_BASE_URL=http://127.0.0.1:8765 AGENTMEM_API_KEY=am_...
    python examples/state_handoff.py

A researcher agent and a writer agent share one workflow namespace. The researcher leaves its
findings and flips the workflow's status; the writer, which may run in another process or on
another machine with the same key, waits for that status, takes the findings, and claims the
work with a guarded write so that two writers can never both take it. Plain Python here; in a
real system each agent is whatever framework you use, and only the state calls matter.
"""

from __future__ import annotations

import threading
import time
import uuid

import agentmem


def researcher(workflow_id: str) -> None:
    with agentmem.Client() as client:  # AGENTMEM_BASE_URL, AGENTMEM_API_KEY
        flow = client.state.workflow(workflow_id)
        flow.set("findings", {"destination": "Porto", "best_month": "May", "budget_eur": 900})
        flow.set("status", "researched")  # the hand-off: the writer is waiting for this


def writer(workflow_id: str, name: str, outcome: dict[str, str]) -> None:
    with agentmem.Client() as client:
        flow = client.state.workflow(workflow_id)
        deadline = time.monotonic() + 30
        while not flow.exists("status"):  # not handed over yet
            if time.monotonic() > deadline:
                raise TimeoutError("the researcher never handed over")
            time.sleep(0.05)
        entry = flow.get("status")
        if entry.value != "researched":
            outcome[name] = f"found it taken: {entry.value!r}"
            return
        try:
            # Guarded: the claim holds only if nobody wrote the status since this read.
            flow.set("status", f"claimed by {name}", expected_updated_at=entry.updated_at)
        except agentmem.ConflictError as lost:
            outcome[name] = f"lost the claim to {lost.current_entry.value!r}"  # type: ignore[union-attr]
            return
        found = flow.get_value("findings")
        draft = f"Go to {found['destination']} in {found['best_month']}, {found['budget_eur']} EUR."
        flow.set("draft", draft)
        flow.set("status", "written")
        outcome[name] = "wrote the draft"


def main() -> None:
    workflow_id = f"trip-{uuid.uuid4().hex[:8]}"
    outcome: dict[str, str] = {}
    writers = [
        threading.Thread(target=writer, args=(workflow_id, n, outcome)) for n in ("w1", "w2")
    ]
    for t in writers:
        t.start()
    researcher(workflow_id)
    for t in writers:
        t.join()

    with agentmem.Client() as client:
        flow = client.state.workflow(workflow_id)
        print("status:", flow.get_value("status"))
        print("draft:", flow.get_value("draft"))
        print("writers:", sorted(outcome.values()))


if __name__ == "__main__":
    main()
