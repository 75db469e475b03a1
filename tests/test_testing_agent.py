"""The bundled endpoint's scripted tool calling, over real HTTP.

Streams are read with the client's own SSE parser and reply builder, and the
raw chunks are checked against the spec's shapes (3.B whole calls, 3.C
``tool_stream`` fragments). The demo is driven the way the agent will drive
it: its ``run_python`` code really runs on :func:`demo_sales` rows.
"""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from glm_magic.client.sse import DONE, SSEDecoder, parse_chunk, split_payload
from glm_magic.reply import Reply, ReplyBuilder
from glm_magic.testing import EndpointServer
from glm_magic.testing.agent_scripts import BUGGY_CODE, DONE_TEXT, FIXED_CODE, demo_sales

TOOLS = [
    {"type": "function", "function": {"name": n, "parameters": {"type": "object"}}}
    for n in ("notebook_summary", "list_variables", "describe_variable", "run_python")
]
FORMS = ["whole", "tool_stream", "directive", "non-streaming"]


@pytest.fixture
def client(fresh_endpoint: EndpointServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=fresh_endpoint.base_url, timeout=30) as c:
        yield c


def script(turns: list[Any], task: str = "Analyse the data.") -> list[dict[str, Any]]:
    return [{"role": "user", "content": f"{task}\nagent-script: {json.dumps(turns)}\n"}]


def post(
    client: httpx.Client, messages: list[dict[str, Any]], form: str = "whole", **extra: Any
) -> httpx.Response:
    model = extra.pop("model", "glm-4.7")
    body: dict[str, Any] = {"messages": messages, "tools": TOOLS, **extra}
    body["stream"] = form != "non-streaming"
    if form == "tool_stream":
        body["tool_stream"] = True
    if form == "directive":
        model += "+tool_stream=1"
    body["model"] = model
    return client.post("/chat/completions", json=body)


def chunks(response: httpx.Response) -> list[dict[str, Any]]:
    """The JSON chunks of a streamed reply (``[DONE]`` must end it)."""
    decoder = SSEDecoder()
    objects = [
        o for f in decoder.feed(response.content) + decoder.flush() for o in split_payload(f.data)
    ]
    assert objects[-1] == DONE
    return [o for o in objects if o != DONE]


def reply_of(response: httpx.Response) -> Reply:
    """The reply as the client assembles it (streamed chunks or the whole body)."""
    assert response.status_code == 200, response.text
    builder = ReplyBuilder("glm-4.7")
    parts = (
        [response.json()]
        if response.headers["content-type"].startswith("application/json")
        else chunks(response)
    )
    for part in parts:
        for event in parse_chunk(part):
            builder.add(event)
    return builder.snapshot()


def calls_of(reply: Reply) -> list[tuple[str, str]]:
    return [(c.name or "", c.arguments) for c in reply.tool_calls]


def tool_chunks(items: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    return [
        c["choices"][0]["delta"]["tool_calls"]
        for c in items
        if c["choices"] and "tool_calls" in c["choices"][0]["delta"]
    ]


TWO_CALLS = [
    {
        "text": "Two looks first.",
        "calls": [
            {"name": "list_variables", "arguments": {}},
            {"name": "run_python", "arguments": {"code": 'print("héllo \\"quoted\\" {x}")\nx = 1'}},
        ],
    },
    "All done.",
]
EXPECTED_TWO = [
    ("list_variables", "{}"),
    (
        "run_python",
        json.dumps(
            {"code": 'print("héllo \\"quoted\\" {x}")\nx = 1'},
            ensure_ascii=False,
            separators=(",", ":"),
        ),
    ),
]


# -- the wire forms ----------------------------------------------------------


@pytest.mark.parametrize("form", FORMS)
def test_several_calls_in_one_turn_assemble_in_every_form(client: httpx.Client, form: str) -> None:
    response = post(client, script(TWO_CALLS), form, request_id="req-agent-42")
    reply = reply_of(response)
    assert reply.text == "Two looks first."
    assert calls_of(reply) == EXPECTED_TWO
    assert [c.id for c in reply.tool_calls] == ["call_req-agent-42_0", "call_req-agent-42_1"]
    assert reply.finish_reason == "tool_calls" and reply.complete
    assert reply.usage is not None and reply.usage.completion_tokens > 0


def test_default_stream_sends_each_whole_call_in_one_chunk(client: httpx.Client) -> None:
    items = chunks(post(client, script(TWO_CALLS), "whole"))
    tools = tool_chunks(items)
    assert len(tools) == 2
    for i, (entries, (name, arguments)) in enumerate(zip(tools, EXPECTED_TWO, strict=True)):
        assert entries == [
            {
                "index": i,
                "id": entries[0]["id"],
                "type": "function",
                "function": {"name": name, "arguments": arguments},
            }
        ]
    # Text first, then the calls, then the finish chunk.
    kinds = [
        "tool" if "tool_calls" in c["choices"][0]["delta"] else "text"
        for c in items
        if c["choices"] and not c["choices"][0].get("finish_reason")
    ]
    assert kinds == sorted(kinds, key=lambda k: k == "tool") and kinds[0] == "text"
    finish = [c for c in items if c["choices"] and c["choices"][0].get("finish_reason")]
    assert [c["choices"][0]["finish_reason"] for c in finish] == ["tool_calls"]


@pytest.mark.parametrize("form", ["tool_stream", "directive"])
def test_tool_stream_sends_head_then_argument_fragments_by_index(
    client: httpx.Client, form: str
) -> None:
    tools = tool_chunks(chunks(post(client, script(TWO_CALLS), form)))
    by_index: dict[int, list[dict[str, Any]]] = {}
    for entries in tools:
        assert len(entries) == 1
        by_index.setdefault(entries[0]["index"], []).append(entries[0])
    assert sorted(by_index) == [0, 1]
    for i, (name, arguments) in enumerate(EXPECTED_TWO):
        head, *rest = by_index[i]
        assert head["id"] and head["function"] == {"name": name, "arguments": ""}
        assert rest and all(set(e) == {"index", "function"} for e in rest)
        assert "".join(e["function"]["arguments"] for e in rest) == arguments
    assert len(by_index[1]) > 3  # really in fragments


def test_tool_stream_directive_off_wins_over_the_body(client: httpx.Client) -> None:
    tools = tool_chunks(
        chunks(post(client, script(TWO_CALLS), "tool_stream", model="glm-4.7+tool_stream=0"))
    )
    assert len(tools) == 2


def test_non_streaming_message_carries_tool_calls(client: httpx.Client) -> None:
    body = post(client, script(TWO_CALLS), "non-streaming", request_id="req-ns-7").json()
    choice = body["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["tool_calls"] == [
        {"id": f"call_req-ns-7_{i}", "type": "function", "function": {"name": n, "arguments": a}}
        for i, (n, a) in enumerate(EXPECTED_TWO)
    ]


def test_usage_is_the_same_in_every_form(client: httpx.Client) -> None:
    counts = set()
    for form in FORMS:
        reply = reply_of(post(client, script(TWO_CALLS), form))
        assert reply.usage is not None
        counts.add((reply.usage.prompt_tokens, reply.usage.completion_tokens))
    assert len(counts) == 1
    ((_, completion),) = counts
    text = len("Two looks first.") // 4 + 1
    assert completion > text  # the calls count too


def test_without_tools_the_reply_is_an_ordinary_one(client: httpx.Client) -> None:
    response = client.post(
        "/chat/completions", json={"model": "glm-4.7", "messages": script(TWO_CALLS), "tools": []}
    )
    choice = response.json()["choices"][0]
    assert choice["finish_reason"] == "stop" and "tool_calls" not in choice["message"]


# -- explicit scripts --------------------------------------------------------


def history(turns: int, results: list[str] | None = None) -> list[dict[str, Any]]:
    """Assistant turns with tool calls, each answered by a tool message."""
    out: list[dict[str, Any]] = []
    for t in range(turns):
        cid = f"call_x_{t}"
        call = {
            "id": cid,
            "type": "function",
            "function": {"name": "list_variables", "arguments": "{}"},
        }
        out.append({"role": "assistant", "content": "", "tool_calls": [call]})
        out.append({"role": "tool", "tool_call_id": cid, "content": (results or [""] * turns)[t]})
    return out


SCRIPT = [
    {"text": "turn zero", "calls": [{"name": "list_variables", "arguments": {}}]},
    {
        "text": "turn one saw: {last_result}",
        "calls": [{"name": "run_python", "raw_arguments": '{"code": "oops'}],
    },
    "final after {last_result}!",
]


@pytest.mark.parametrize("form", FORMS)
def test_turns_are_counted_by_assistant_messages_with_tool_calls(
    client: httpx.Client, form: str
) -> None:
    base = script(SCRIPT)
    first = reply_of(post(client, base, form))
    assert (first.text, calls_of(first)) == ("turn zero", [("list_variables", "{}")])
    # A plain assistant message (no tool_calls) does not count as a turn.
    chatter = [
        {"role": "assistant", "content": "thinking aloud"},
        {"role": "user", "content": "go on"},
    ]
    again = reply_of(post(client, base + chatter, form))
    assert again.text == "turn zero"
    result = 'a = 1 {braces} «ünïcode»\n"quoted" \\ back'
    second = reply_of(post(client, base + history(1, [result]), form))
    assert second.text == f"turn one saw: {result}"
    assert calls_of(second) == [("run_python", '{"code": "oops')]  # raw, invalid JSON verbatim
    third = reply_of(post(client, base + history(2, ["first", "the last one"]), form))
    assert (third.text, third.tool_calls, third.finish_reason) == (
        "final after the last one!",
        [],
        "stop",
    )
    past = reply_of(post(client, base + history(5), form))
    assert (past.text, past.tool_calls) == (DONE_TEXT, [])


def test_the_script_line_is_read_from_the_first_user_message_only(client: httpx.Client) -> None:
    messages = [
        {"role": "user", "content": "no script here"},
        {"role": "user", "content": 'agent-script: ["late"]'},
    ]
    reply = reply_of(post(client, messages))
    assert reply.text != "late"  # the demo answered
    assert [c.name for c in reply.tool_calls] == ["notebook_summary", "list_variables"]


@pytest.mark.parametrize(
    ("line", "why"),
    [
        ("agent-script: [oops", "not valid JSON"),
        ('agent-script: {"a": 1}', "must be a JSON list"),
        ('agent-script: [{"calls": [{"arguments": {}}]}]', "string name"),
        (
            'agent-script: [{"calls": [{"name": "x", "raw_arguments": 3}]}]',
            "raw_arguments must be a string",
        ),
        ("agent-script: [3]", "turn 0 must be"),
    ],
)
def test_a_malformed_script_gets_a_clear_400(client: httpx.Client, line: str, why: str) -> None:
    response = post(client, [{"role": "user", "content": line}])
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "1210" and why in error["message"] and "\n" not in error["message"]


# -- directives keep working -------------------------------------------------


def test_thinking_comes_first_then_text_then_calls(client: httpx.Client) -> None:
    items = chunks(post(client, script(TWO_CALLS), "tool_stream", model="glm-4.7+think=1"))
    order: list[str] = []
    for c in items:
        delta = c["choices"][0]["delta"] if c["choices"] else {}
        kind = next(
            (k for k in ("reasoning_content", "content", "tool_calls") if delta.get(k)), None
        )
        if kind and (not order or order[-1] != kind):
            order.append(kind)
    assert order == ["reasoning_content", "content", "tool_calls"]
    reply = reply_of(post(client, script(TWO_CALLS), "non-streaming", model="glm-4.7+think=1"))
    assert reply.reasoning and calls_of(reply) == EXPECTED_TWO
    assert reply.usage is not None and reply.usage.reasoning_tokens


def test_delay_paces_the_tool_call_chunks(
    client: httpx.Client, fresh_endpoint: EndpointServer
) -> None:
    # No text: the first chunk is call 0; with a 600 s delay call 1 cannot have come yet
    # when the client hangs up after seeing call 0.
    turns = [{"calls": [{"name": "list_variables"}, {"name": "notebook_summary"}]}]
    body = {"model": "glm-4.7+delay=600", "messages": script(turns), "tools": TOOLS}
    seen: list[dict[str, Any]] = []
    with client.stream("POST", "/chat/completions", json={**body, "stream": True}) as response:
        decoder = SSEDecoder()
        for data in response.iter_bytes():
            seen += [o for f in decoder.feed(data) for o in split_payload(f.data)]
            if seen:
                break
    assert tool_chunks(seen) == [
        [
            {
                "index": 0,
                "id": seen[0]["choices"][0]["delta"]["tool_calls"][0]["id"],
                "type": "function",
                "function": {"name": "list_variables", "arguments": "{}"},
            }
        ]
    ]
    assert fresh_endpoint.wait_for_outcome(0, timeout=30) == "client_closed"
    assert fresh_endpoint.requests[0].chunks_sent == 1


def test_a_cut_inside_the_tool_calls_leaves_them_unfinished(
    client: httpx.Client, fresh_endpoint: EndpointServer
) -> None:
    # "Two looks first." is 4 pieces; the cut falls inside the second call's fragments.
    response = post(
        client, script(TWO_CALLS), "tool_stream", model="glm-4.7+fault=truncate+cut_after=9"
    )
    items = chunks_without_done(response)
    assert not any(c["choices"] and c["choices"][0].get("finish_reason") for c in items)
    builder = ReplyBuilder("glm-4.7")
    for c in items:
        for e in parse_chunk(c):
            builder.add(e)
    calls = builder.snapshot().tool_calls
    assert [c.name for c in calls] == ["list_variables", "run_python"]
    assert calls[1].arguments and calls[1].arguments != EXPECTED_TWO[1][1]
    assert fresh_endpoint.wait_for_outcome(0) == "fault"


def chunks_without_done(response: httpx.Response) -> list[dict[str, Any]]:
    decoder = SSEDecoder()
    objects = [
        o for f in decoder.feed(response.content) + decoder.flush() for o in split_payload(f.data)
    ]
    assert DONE not in objects
    return objects


def test_tool_index_fault_sends_the_calls_with_index_minus_one(client: httpx.Client) -> None:
    response = post(
        client, script(TWO_CALLS), "whole", model="glm-4.7+fault=tool_index+cut_after=100"
    )
    items = chunks(response)
    quirk = [c for c in items if c["choices"] and "tool_calls" in c["choices"][0]["delta"]]
    assert len(quirk) == 1 and quirk[0]["choices"][0]["finish_reason"] == "tool_calls"
    assert [e["index"] for e in quirk[0]["choices"][0]["delta"]["tool_calls"]] == [-1, -1]
    reply = reply_of(response)
    assert calls_of(reply) == EXPECTED_TWO and reply.finish_reason == "tool_calls"


def test_max_tokens_cutting_the_text_drops_the_calls(client: httpx.Client) -> None:
    reply = reply_of(post(client, script(TWO_CALLS), "whole", max_tokens=2))
    assert reply.finish_reason == "length" and reply.tool_calls == []
    assert reply.text == "Two looks first."[:8]


# -- the built-in demo -------------------------------------------------------


def run(code: str, namespace: dict[str, Any]) -> str:
    """Run *code* as the agent's run_python would: stdout, then the exception line."""
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out):
            exec(code, namespace)
    except Exception as exc:
        return out.getvalue() + f"{type(exc).__name__}: {exc}"
    return out.getvalue()


def as_the_kernel_reports(printed: str, count: int) -> str:
    """A run's tool result in the kernel's layout: where it ran, then labelled parts."""
    *out, last = printed.split("\n")
    if last.startswith("KeyError"):
        stdout = "\n".join(out)
        parts = [f"stdout:\n{stdout}"] if stdout else []
        body = "\n\n".join([*parts, f"error:\nTraceback (most recent call last):\n{last}"])
        return f"ran as In [{count}], failed\n\n{body}"
    return f"ran as In [{count}], finished\n\nstdout:\n{printed}\n\nstderr:\nwarning: none"


def play(
    client: httpx.Client, form: str, namespace: dict[str, Any], decline: bool = False
) -> tuple[list[list[tuple[str, dict[str, Any]]]], list[str], Reply]:
    """Drive the demo to its answer, playing the kernel; return calls, run results, answer."""
    messages: list[dict[str, Any]] = [{"role": "user", "content": "Which region sells the most?"}]
    turns: list[list[tuple[str, dict[str, Any]]]] = []
    runs: list[str] = []
    for _ in range(10):
        reply = reply_of(post(client, messages, form))
        if not reply.tool_calls:
            return turns, runs, reply
        assert reply.finish_reason == "tool_calls"
        assert "scripted" in reply.text
        calls = [(c.name or "", json.loads(c.arguments)) for c in reply.tool_calls]
        turns.append(calls)
        wire = [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
            for c in reply.tool_calls
        ]
        messages.append({"role": "assistant", "content": reply.text, "tool_calls": wire})
        for call, (name, args) in zip(reply.tool_calls, calls, strict=True):
            if name == "list_variables":
                result = "\n".join(
                    f"{k}: {type(v).__name__}"
                    for k, v in namespace.items()
                    if not k.startswith("_")
                )
            elif name == "describe_variable":
                value = namespace.get(args["name"])
                size = len(value) if value is not None else 0
                result = f"{args['name']}: {type(value).__name__}, length {size}"
            elif name == "run_python":
                if decline:
                    result = "Declined by the user: skipped"
                    runs.append(result)
                else:
                    runs.append(run(args["code"], namespace))
                    result = as_the_kernel_reports(runs[-1], len(runs))
            else:
                result = "Error: no notebook here"
            messages.append({"role": "tool", "tool_call_id": call.id, "content": result})
    raise AssertionError("the demo did not answer within 10 turns")


def expected_table(rows: list[dict[str, Any]]) -> list[str]:
    totals: dict[str, float] = {}
    for row in rows:
        totals[row["region"]] = totals.get(row["region"], 0.0) + row["units"] * row["price"]
    lines = [
        f"{region:<8}{total:>12,.2f}"
        for region, total in sorted(totals.items(), key=lambda kv: -kv[1])
    ]
    return [*lines, f"{'total':<8}{sum(totals.values()):>12,.2f}"]


@pytest.mark.parametrize("form", FORMS)
def test_demo_fails_reads_the_error_fixes_and_summarises(client: httpx.Client, form: str) -> None:
    rows = demo_sales()
    turns, runs, answer = play(client, form, {"sales": rows})
    names = [[name for name, _ in turn] for turn in turns]
    assert names == [
        ["notebook_summary", "list_variables"],
        ["describe_variable"],
        ["run_python"],
        ["run_python"],
    ]
    assert turns[1][0][1] == {"name": "sales"}
    assert turns[2][0][1]["code"] == BUGGY_CODE and turns[3][0][1]["code"] == FIXED_CODE
    assert runs[0].strip() == "KeyError: 'revenue'"  # the first run really fails
    assert runs[1].splitlines()[1:] == expected_table(rows)  # the fix really works
    for line in runs[1].splitlines():
        assert line in answer.text  # the answer quotes the printed output
    assert "ran as In" not in answer.text and "stderr" not in answer.text  # stdout only
    top = expected_table(rows)[0].split()[0]
    assert f"**{top}** leads" in answer.text
    assert "scripted" in answer.text and answer.finish_reason == "stop"


def test_the_fix_step_quotes_the_error_it_read(client: httpx.Client) -> None:
    messages: list[dict[str, Any]] = [{"role": "user", "content": "go"}]
    call = {
        "id": "c1",
        "type": "function",
        "function": {"name": "run_python", "arguments": json.dumps({"code": BUGGY_CODE})},
    }
    messages += [{"role": "assistant", "content": "", "tool_calls": [call]}]
    messages += [
        {"role": "tool", "tool_call_id": "c1", "content": "Traceback ...\nKeyError: 'revenue'"}
    ]
    reply = reply_of(post(client, messages))
    assert "`KeyError: 'revenue'`" in reply.text
    assert calls_of(reply) == [
        ("run_python", json.dumps({"code": FIXED_CODE}, separators=(",", ":")))
    ]
    # Any other failure of the first attempt is reported, not "fixed".
    messages[-1]["content"] = "NameError: name 'sales' is not defined"
    reply = reply_of(post(client, messages))
    assert reply.tool_calls == [] and "NameError: name 'sales' is not defined" in reply.text


@pytest.mark.parametrize("form", ["whole", "non-streaming"])
def test_demo_declined_answers_without_running_anything_more(
    client: httpx.Client, form: str
) -> None:
    turns, runs, answer = play(client, form, {"sales": demo_sales()}, decline=True)
    assert [name for name, _ in turns[-1]] == ["run_python"] and len(runs) == 1
    assert answer.tool_calls == [] and answer.finish_reason == "stop"
    assert "declined" in answer.text and "ran nothing more" in answer.text


def test_demo_without_sales_takes_the_generic_path(client: httpx.Client) -> None:
    turns, runs, answer = play(client, "whole", {"prices": [3, 1, 2]})
    names = [[name for name, _ in turn] for turn in turns]
    assert names == [["notebook_summary", "list_variables"], ["describe_variable"], ["run_python"]]
    assert turns[1][0][1] == {"name": "prices"}
    assert runs[0].strip() and runs[0].strip() in answer.text and "scripted" in answer.text


def test_demo_stops_on_a_tool_error(client: httpx.Client) -> None:
    messages: list[dict[str, Any]] = [{"role": "user", "content": "go"}]
    call = {
        "id": "c1",
        "type": "function",
        "function": {"name": "describe_variable", "arguments": '{"name": "sales"}'},
    }
    messages += [{"role": "assistant", "content": "", "tool_calls": [call]}]
    messages += [
        {"role": "tool", "tool_call_id": "c1", "content": "Error: no variable named 'sales'"}
    ]
    reply = reply_of(post(client, messages))
    assert reply.tool_calls == [] and "Error: no variable named 'sales'" in reply.text


# -- the demo data and code, without HTTP ------------------------------------


def test_demo_sales_follows_the_notebook_recipe() -> None:
    import random

    rng = random.Random(7)
    expected = []
    for _ in range(48):
        region = rng.choice(["north", "south", "east", "west"])
        month = rng.randint(1, 6)
        units = rng.randint(1, 40)
        price = round(rng.uniform(2.5, 20.0), 2)
        expected.append({"region": region, "month": month, "units": units, "price": price})
    assert demo_sales() == expected
    assert {r["region"] for r in expected} == {"north", "south", "east", "west"}


def test_buggy_code_fails_and_fixed_code_prints_the_table() -> None:
    rows = demo_sales()
    assert run(BUGGY_CODE, {"sales": rows}) == "KeyError: 'revenue'"
    printed = run(FIXED_CODE, {"sales": rows}).splitlines()
    assert printed[0].split() == ["region", "revenue"]
    assert printed[1:] == expected_table(rows)


def test_odd_history_shapes_get_an_answer_not_a_500(client: httpx.Client) -> None:
    # Messages are untrusted input: ids of the wrong type, calls that are not objects,
    # arguments that are not JSON.
    odd_call = {"id": ["x"], "function": {"name": "run_python", "arguments": "{oops"}}
    messages: list[dict[str, Any]] = [
        {"role": "user", "content": "go"},
        {"role": "assistant", "content": "", "tool_calls": [odd_call, "junk", {"id": "c2"}]},
        {"role": "tool", "tool_call_id": {"a": 1}, "content": "KeyError: 'x'"},
        {"role": "tool", "tool_call_id": "c2", "content": None},
    ]
    reply = reply_of(post(client, messages, "non-streaming"))
    assert reply.finish_reason == "stop" and "scripted" in reply.text


def test_a_turn_without_text_sends_null_content(client: httpx.Client) -> None:
    turns = [{"calls": [{"name": "list_variables"}]}]
    message = post(client, script(turns), "non-streaming").json()["choices"][0]["message"]
    assert message["content"] is None and len(message["tool_calls"]) == 1
