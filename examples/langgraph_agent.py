"""A LangGraph agent whose long-term memory is agentmem, running offline with a scripted model.

    pip install 'agentmem-kit[langgraph]'
    export AGENTMEM_BASE_URL=http://127.0.0.1:8765 AGENTMEM_API_KEY=am_...
    python examples/langgraph_agent.py

The graph is plain LangGraph: a node reads the user's memories from the store LangGraph hands
it, writes new ones, and calls a chat model. The one agentmem line is the store given to
`compile` (where an in-memory store would be): the memories then live on the agentmem server,
isolated per tenant, searchable by meaning with the server's embedding model, and still there
for the next conversation, process or machine. The chat model is LangChain's scripted fake so
the example needs no LLM; swap in any chat model.
"""

from __future__ import annotations

import uuid

from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from langchain_core.runnables import RunnableConfig
from langgraph.graph import START, MessagesState, StateGraph
from langgraph.store.base import BaseStore

import agentmem
from agentmem.integrations.langgraph import AgentmemStore

model = GenericFakeChatModel(
    messages=iter(
        [
            AIMessage("Noted: a window seat, and no mushrooms."),
            AIMessage("You like a window seat, so I picked 14A."),
        ]
    )
)
prompts: list[list[BaseMessage]] = []  # what the model was sent, to show the memories in it


def chat(state: MessagesState, config: RunnableConfig, *, store: BaseStore) -> MessagesState:
    namespace = ("memories", config["configurable"]["user_id"])
    said = str(state["messages"][-1].content)
    if said.lower().startswith("remember:"):
        for fact in said.split(":", 1)[1].split(";"):
            store.put(namespace, str(uuid.uuid4()), {"text": fact.strip()})
    memories = store.search(namespace, query=said, limit=2)
    system = SystemMessage(
        "What you know about the user:\n" + "\n".join(f"- {m.value['text']}" for m in memories)
    )
    prompts.append([system, *state["messages"]])
    return {"messages": [model.invoke(prompts[-1])]}


builder = StateGraph(MessagesState)
builder.add_node("chat", chat)
builder.add_edge(START, "chat")


def main() -> None:
    with agentmem.Client() as client:  # AGENTMEM_BASE_URL, AGENTMEM_API_KEY
        store = AgentmemStore(client, index={"fields": ["text"]})  # was: InMemoryStore(...)
        graph = builder.compile(store=store)
        user = {"user_id": f"ana-{uuid.uuid4().hex[:6]}"}

        first = graph.invoke(
            {"messages": [HumanMessage("Remember: I prefer a window seat; I avoid mushrooms")]},
            {"configurable": {**user, "thread_id": "monday"}},
        )
        print("agent:", first["messages"][-1].content)

        # Another conversation (it could be another process): the memories come from agentmem.
        second = graph.invoke(
            {"messages": [HumanMessage("Book my flight to Porto. Where should I sit?")]},
            {"configurable": {**user, "thread_id": "friday"}},
        )
        print("model was told:", prompts[-1][0].content.splitlines()[1])
        print("agent:", second["messages"][-1].content)
        stored = store.search(("memories", user["user_id"]), limit=10)
        print("memories stored:", sorted(item.value["text"] for item in stored))


if __name__ == "__main__":
    main()
