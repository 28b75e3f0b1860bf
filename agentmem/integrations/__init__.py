"""Adapters for agent frameworks, each behind its own extra (the base client imports none).

- `agentmem.integrations.langgraph`: `AgentmemStore` / `AsyncAgentmemStore`, LangGraph's
  `BaseStore` on agentmem keyed state (`pip install 'agentmem-kit[langgraph]'`).
"""
