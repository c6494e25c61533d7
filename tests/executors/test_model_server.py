"""The scripted model server speaks each wire format well enough for real clients (the real-CLI
tests prove that end to end); these check its shapes quickly, with httpx."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from tests.support import fixtures
from tests.support.model_server import Fail, ModelServer, Shell, Text, ToolCall

make_model_server = fixtures.make_model_server  # the pytest fixtures, used by name
model_server = fixtures.model_server


def sse(body: str) -> list[tuple[str | None, Any]]:
    out: list[tuple[str | None, Any]] = []
    for frame in body.strip().split("\n\n"):
        event = None
        data = ""
        for line in frame.splitlines():
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: "):
                data = line[6:]
        out.append((event, data if data == "[DONE]" else json.loads(data)))
    return out


def test_anthropic_tool_call_then_text(make_model_server: Any) -> None:
    server: ModelServer = make_model_server(
        [Shell("ls -la", text="Looking."), Text("Done.", "hmm")]
    )
    tools = [{"name": "Read", "input_schema": {}}, {"name": "Bash", "input_schema": {}}]
    with httpx.Client(base_url=server.url) as c:
        assert c.head("/").status_code == 200
        side = c.post("/v1/messages?beta=true", json={"stream": False, "messages": []}).json()
        assert side["content"] == [{"type": "text", "text": "Fake title"}]
        body = {
            "model": "claude-x",
            "stream": True,
            "tools": tools,
            "messages": [{"content": "hi"}],
        }
        r = c.post("/v1/messages?beta=true", json=body)
        assert r.headers["content-type"] == "text/event-stream"
        events = sse(r.text)
        names = [e for e, _ in events]
        assert names[0] == "message_start" and names[-2:] == ["message_delta", "message_stop"]
        text = "".join(
            d["delta"]["text"]
            for e, d in events
            if e == "content_block_delta" and "text" in d["delta"]
        )
        assert text == "Looking."
        start = [d for e, d in events if e == "content_block_start"][1]["content_block"]
        assert (start["type"], start["name"]) == ("tool_use", "Bash")
        args = "".join(
            d["delta"]["partial_json"]
            for e, d in events
            if e == "content_block_delta" and d["delta"]["type"] == "input_json_delta"
        )
        assert json.loads(args) == {"command": "ls -la"}
        assert events[-2][1]["delta"]["stop_reason"] == "tool_use"
        events = sse(c.post("/v1/messages", json=body).text)
        kinds = [d["content_block"]["type"] for e, d in events if e == "content_block_start"]
        assert kinds == ["thinking", "text"]
        assert events[-2][1]["delta"]["stop_reason"] == "end_turn"
    assert [r.main for r in server.requests] == [False, False, True, True]
    assert server.requests[2].body["messages"] == [{"content": "hi"}]
    assert server.requests[2].query == {"beta": ["true"]}
    assert server.remaining == 0


def test_responses_function_call_uses_offered_tool(make_model_server: Any) -> None:
    server: ModelServer = make_model_server([Shell("echo hi"), "ok"])
    body = {"model": "m", "tools": [{"type": "function", "name": "exec_command"}], "input": []}
    with httpx.Client(base_url=server.url) as c:
        events = sse(c.post("/v1/responses", json=body).text)
        done = [d for e, d in events if e == "response.output_item.done"][-1]["item"]
        assert done["type"] == "function_call" and done["name"] == "exec_command"
        assert json.loads(done["arguments"]) == {"cmd": "echo hi"}
        assert events[-1][0] == "response.completed"
        events = sse(c.post("/v1/responses", json=body).text)
        deltas = [d["delta"] for e, d in events if e == "response.output_text.delta"]
        assert "".join(deltas) == "ok"
        assert events[-1][1]["response"]["usage"]["input_tokens"] == 10


def test_gemini_stream_and_side_calls(make_model_server: Any) -> None:
    server: ModelServer = make_model_server([Shell("pwd"), "all good"])
    decls = [{"name": "run_shell_command", "parameters": {"properties": {"command": {}}}}]
    body = {"contents": [], "tools": [{"functionDeclarations": decls}]}
    path = "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
    with httpx.Client(base_url=server.url) as c:
        frames = [d for _, d in sse(c.post(path, json=body).text)]
        part = frames[0]["candidates"][0]["content"]["parts"][0]
        assert part == {"functionCall": {"name": "run_shell_command", "args": {"command": "pwd"}}}
        assert frames[-1]["candidates"][0]["finishReason"] == "STOP"
        frames = [d for _, d in sse(c.post(path, json=body).text)]
        assert "".join(f["candidates"][0]["content"]["parts"][0]["text"] for f in frames) == (
            "all good"
        )
        side = c.post("/v1beta/models/gemini-2.5-flash:generateContent", json={"contents": []})
        assert side.json()["candidates"][0]["content"]["parts"] == [{"text": "Fake title"}]
        assert c.post("/v1beta/models/x:countTokens", json={}).json() == {"totalTokens": 10}


def test_chat_completions_stream_and_json(make_model_server: Any) -> None:
    server: ModelServer = make_model_server(
        [ToolCall("read_file", {"path": "a"}, text="Reading."), Text("fine", "because")],
        tool_less_is_side=False,
    )
    with httpx.Client(base_url=server.url) as c:
        models = c.get("/v1/models").json()
        assert models["data"][0]["id"] == "fake-model"
        events = [d for _, d in sse(c.post("/v1/chat/completions", json={"stream": True}).text)]
        assert events[-1] == "[DONE]"
        deltas = [e["choices"][0]["delta"] for e in events[:-1] if e["choices"]]
        assert "".join(d.get("content") or "" for d in deltas) == "Reading."
        (call,) = [d["tool_calls"][0] for d in deltas if "tool_calls" in d]
        assert call["function"] == {"name": "read_file", "arguments": '{"path": "a"}'}
        finish = [e["choices"][0]["finish_reason"] for e in events[:-1] if e["choices"]]
        assert finish[-1] == "tool_calls"
        assert events[-2]["usage"]["total_tokens"] == 15
        msg = c.post("/v1/chat/completions", json={}).json()["choices"][0]["message"]
        assert msg == {"role": "assistant", "content": "fine", "reasoning_content": "because"}


@pytest.mark.parametrize("status", [401, 500])
def test_scripted_failure(model_server: ModelServer, status: int) -> None:
    model_server.add(Fail(status, "nope"), "after")
    body = {"tools": [{"name": "Bash"}], "stream": False}
    with httpx.Client(base_url=model_server.url) as c:
        r = c.post("/v1/messages", json=body)
        assert r.status_code == status and r.json()["error"]["message"] == "nope"
        assert c.post("/v1/messages", json=body).json()["content"][0]["text"] == "after"
        assert c.post("/v1/messages", json=body).json()["content"][0]["text"] == (
            "Nothing left in the script."
        )


def test_requests_are_logged_with_headers(model_server: ModelServer) -> None:
    with httpx.Client(base_url=model_server.url) as c:
        c.post("/anything/else", content=b"not json", headers={"x-api-key": "k"})
    (req,) = model_server.requests
    assert (req.method, req.path, req.wire, req.main) == ("POST", "/anything/else", "other", False)
    assert req.headers["x-api-key"] == "k" and req.body is None and req.raw == b"not json"
