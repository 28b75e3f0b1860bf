"""`agentmem.tools`: the one definition of the memory tools, importable without the server."""

from __future__ import annotations

import pytest

from agentmem.tools import MEMORY_TOOL_NAMES, memory_tools

from support import fresh_python


def test_six_function_tools_in_order():
    tools = memory_tools()
    assert [t["type"] for t in tools] == ["function"] * 6
    assert [t["function"]["name"] for t in tools] == [
        "recall_archival_memory",
        "append_archival_memory",
        "update_core_memory",
        "remember",
        "recall",
        "forget",
    ]
    assert list(MEMORY_TOOL_NAMES) == [t["function"]["name"] for t in tools]


def test_required_arguments_match_the_design():
    by_name = {t["function"]["name"]: t["function"]["parameters"] for t in memory_tools()}
    assert by_name["recall_archival_memory"]["required"] == ["query"]
    assert set(by_name["recall_archival_memory"]["properties"]) == {"query", "limit"}
    assert by_name["append_archival_memory"]["required"] == ["text"]
    assert by_name["update_core_memory"]["required"] == ["content", "expected_updated_at"]
    assert by_name["update_core_memory"]["properties"]["expected_updated_at"]["type"] == [
        "string",
        "null",
    ]
    assert by_name["remember"]["required"] == ["key", "value"]
    assert by_name["recall"]["required"] == [] and set(by_name["recall"]["properties"]) == {
        "key",
        "prefix",
    }
    assert by_name["forget"]["required"] == ["key"]


def test_the_policy_names_exactly_the_tools():
    from typing import get_args

    from agentmem.types.agents import ToolName

    assert get_args(ToolName) == MEMORY_TOOL_NAMES


def test_copies_are_independent_and_names_are_checked():
    mine = memory_tools(["append_archival_memory"])
    mine[0]["function"]["description"] = "changed"
    assert memory_tools(["append_archival_memory"])[0]["function"]["description"] != "changed"
    with pytest.raises(ValueError, match="recall_everything"):
        memory_tools(["recall_everything"])


def test_importing_the_tools_loads_no_server_code():
    code = (
        "import sys, agentmem.tools; print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "{'agentmem_server', 'fastapi', 'tiktoken', 'sqlalchemy'}))"
    )
    assert fresh_python(code).strip() == "[]"
