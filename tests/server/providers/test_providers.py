"""Providers: the OpenAI-compatible HTTP contract (respx) and the offline echo."""

from __future__ import annotations

import json

import httpx
import pytest
import respx

from agentmem.tools import memory_tools
from agentmem_server.errors import UpstreamError
from agentmem_server.providers import OfflineProvider, OpenAICompatibleProvider, build_provider
from agentmem_server.providers.offline import BANNER
from agentmem_server.services.prompt import build_model_input

from support import LLM_URL, ScriptedLLM, block, make_settings, match, tool_call


@pytest.fixture
async def provider():
    p = OpenAICompatibleProvider(
        base_url=LLM_URL + "/", api_key="sk-test", max_retries=2, initial_backoff_s=0.0
    )
    yield p
    await p.aclose()


async def test_posts_model_messages_and_tools_with_bearer_key(provider, llm: ScriptedLLM):
    llm.reply(
        None,
        [tool_call("recall_archival_memory", {"query": "tea"})],
        prompt_tokens=7,
        completion_tokens=3,
    )
    messages = [{"role": "user", "content": "héllo"}]
    out = await provider.complete("m-1", messages, memory_tools())
    (request,) = llm.requests
    assert request.url == LLM_URL + "/chat/completions"
    assert request.headers["authorization"] == "Bearer sk-test"
    assert request.headers["content-type"] == "application/json"
    # Compact, UTF-8, key order model/messages/tools: the bytes a replay must reproduce.
    expected = {"model": "m-1", "messages": messages, "tools": memory_tools()}
    assert (
        request.content == json.dumps(expected, ensure_ascii=False, separators=(",", ":")).encode()
    )
    assert out.content is None and out.tool_calls[0]["function"]["name"] == "recall_archival_memory"
    assert (out.usage.prompt_tokens, out.usage.completion_tokens, out.usage.total_tokens) == (
        7,
        3,
        10,
    )
    assert out.message == {"role": "assistant", "content": None, "tool_calls": out.tool_calls}


async def test_no_tools_means_no_tools_key(provider, llm: ScriptedLLM):
    await provider.complete("m", [{"role": "user", "content": "x"}], None, tool_choice="none")
    assert llm.bodies[0] == {"model": "m", "messages": [{"role": "user", "content": "x"}]}


@pytest.mark.parametrize("status", [429, 500, 503])
async def test_retries_429_and_5xx_then_succeeds(provider, llm: ScriptedLLM, status):
    llm.fail(status, "busy").reply("done")
    out = await provider.complete("m", [{"role": "user", "content": "x"}])
    assert out.content == "done" and len(llm.requests) == 2


async def test_gives_up_after_max_retries_with_the_providers_message(provider, llm: ScriptedLLM):
    for _ in range(3):
        llm.fail(503, "model overloaded")
    with pytest.raises(UpstreamError) as info:
        await provider.complete("m", [{"role": "user", "content": "x"}])
    assert len(llm.requests) == 3
    assert info.value.status_code == 502
    assert "503" in info.value.message and "model overloaded" in info.value.message


async def test_client_errors_are_not_retried(provider, llm: ScriptedLLM):
    llm.fail(400, "Invalid schema for function 'x'")
    with pytest.raises(UpstreamError, match="Invalid schema for function 'x'"):
        await provider.complete("m", [{"role": "user", "content": "x"}])
    assert len(llm.requests) == 1


async def test_retry_after_longer_than_the_cap_fails_fast(provider):
    with respx.mock(base_url=LLM_URL) as router:
        route = router.post("/chat/completions").mock(
            return_value=httpx.Response(
                429, headers={"retry-after": "3600"}, json={"error": {"message": "quota"}}
            )
        )
        with pytest.raises(UpstreamError, match="429: quota"):
            await provider.complete("m", [{"role": "user", "content": "x"}])
        assert route.call_count == 1


async def test_connect_errors_are_retried_then_reported(provider):
    with respx.mock(base_url=LLM_URL) as router:
        route = router.post("/chat/completions").mock(side_effect=httpx.ConnectError("refused"))
        with pytest.raises(UpstreamError, match="unreachable"):
            await provider.complete("m", [{"role": "user", "content": "x"}])
        assert route.call_count == 3


async def test_read_timeout_is_not_retried(provider):
    with respx.mock(base_url=LLM_URL) as router:
        route = router.post("/chat/completions").mock(side_effect=httpx.ReadTimeout("slow"))
        with pytest.raises(UpstreamError, match="timed out"):
            await provider.complete("m", [{"role": "user", "content": "x"}])
        assert route.call_count == 1


async def test_unreadable_completion_is_an_upstream_error(provider):
    with respx.mock(base_url=LLM_URL) as router:
        router.post("/chat/completions").mock(
            return_value=httpx.Response(200, text="<html>gateway</html>")
        )
        with pytest.raises(UpstreamError, match="unreadable"):
            await provider.complete("m", [{"role": "user", "content": "x"}])


def test_build_provider_follows_settings(tmp_path):
    assert isinstance(
        build_provider(make_settings(tmp_path, llm_provider="offline")), OfflineProvider
    )
    p = build_provider(make_settings(tmp_path, llm_provider="openai", llm_base_url=LLM_URL))
    assert isinstance(p, OpenAICompatibleProvider) and p.base_url == LLM_URL


async def test_offline_provider_echoes_and_lists_the_memory_it_was_shown():
    messages = build_model_input(
        instructions="Be brief.",
        core_blocks=[block("Prefers tea")],
        history=[],
        matches=[match("Acme renews in May", 0.81, line=12)],
        user_message="When does Acme renew?",
    )
    out = await OfflineProvider().complete("any", messages, None)
    assert out.content.splitlines() == [
        BANNER,
        "You said: When does Acme renew?",
        "Memory in my input:",
        "- core memory (user scope): Prefers tea",
        "- archival memory (agent scope, line 12, score 0.810): Acme renews in May",
    ]
    assert out.tool_calls == [] and out.usage.total_tokens == 0


async def test_offline_provider_recalls_once_through_the_tool_when_offered():
    offline = OfflineProvider()
    messages = [{"role": "user", "content": "tea?"}]
    first = await offline.complete("any", messages, memory_tools())
    (call,) = first.tool_calls
    assert call["function"]["name"] == "recall_archival_memory"
    assert json.loads(call["function"]["arguments"]) == {"query": "tea?"}
    result = {
        "matches": [{"content": "likes green tea", "score": 0.5, "scope": "user", "line_number": 3}]
    }
    follow = messages + [
        first.message,
        {"role": "tool", "tool_call_id": call["id"], "content": json.dumps(result)},
    ]
    second = await offline.complete("any", follow, memory_tools())
    assert second.tool_calls == []
    assert "- recalled by tool (user scope, line 3, score 0.500): likes green tea" in second.content
    # Deterministic: the same input gives the same answer.
    assert (await offline.complete("any", follow, memory_tools())).content == second.content
