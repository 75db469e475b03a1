"""A curated mutation check: plant known bugs one at a time and see the tests catch each.

Run with ``make mutate`` (not part of ``make test``; a few minutes). The package and the
tests are copied to a temporary folder; each mutation replaces one exact piece of source
there, runs the tests that should fail on it (real kernels included: they import the copy,
which comes first on ``PYTHONPATH``), and puts the source back. It prints each mutation as
``caught`` (a test failed), ``SURVIVED`` (all passed) or ``ERROR`` (the run broke before
any verdict), and exits non-zero unless every one was caught, or when a pattern is no longer
found: a mutation whose code moved must be updated, never silently skipped.

Usage: ``python scripts/mutate.py [-k WORD] [--list]`` (``-k`` keeps the mutations whose
name contains WORD).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = ["MUTATIONS", "Mutation", "main"]

ROOT = Path(__file__).resolve().parents[1]
#: What the copy needs: the package, the tests, and what tests read (examples, config).
COPIED = ("glm_magic", "tests", "examples", "pyproject.toml")
KEY_LEAKS = "tests/kernel/test_key_leaks.py::test_a_key_no_pattern_matches_is_masked_on_every_path"
CLIENT = "tests/test_client.py"
HTML = "tests/test_htmlrender.py"
PANEL_PREVIEW = "tests/test_panel.py::test_the_panel_preview_masks_the_configured_key"
CRASH_HOOK = "tests/peer/test_crash_hook.py"
BRIDGE_KERNEL = "tests/kernel/test_bridge_kernel.py"
BRIDGE_AGENT = "tests/kernel/test_bridge_agent_kernel.py"
REPLAY = "tests/kernel/test_replay.py"
NBS = "tests/test_replay_notebooks.py"
AGENT = "tests/kernel/test_agent_kernel.py"
ENDPOINT_AGENT = "tests/test_testing_agent.py"
ASSEMBLY = "tests/test_tool_call_assembly.py"
_NOTE_BELOW = (
    '        print("note: the code will appear as a new cell below when this cell finishes")\n'
)


@dataclass(frozen=True)
class Mutation:
    """One planted bug: in ``path``, ``old`` (found exactly once) becomes ``new``."""

    name: str
    path: str
    old: str
    new: str
    tests: tuple[str, ...]


MUTATIONS: tuple[Mutation, ...] = (
    # -- the rows of issue 17's table ----------------------------------------------------------
    Mutation(
        "retry after text: the before-the-first-byte guard removed",
        "glm_magic/client/stream.py",
        "received = self._builder.chars or self._builder.first_token_at is not None",
        "received = False",
        (f"{CLIENT}::test_a_retryable_fault_after_text_is_not_retried",),
    ),
    # Since issue 8 one Session builds every surface's context (``%%glm --context``,
    # ``%glm explain/fix -c``, the panel's send) and every explain/fix prompt (the
    # sub-commands, the buttons and the CLI): one site each where there were several.
    Mutation(
        "configured key not masked in the selected context (%%glm --context, -c, the panel)",
        "glm_magic/core/session.py",
        "secrets=settings.keys_to_mask(),\n            current_count=",
        "secrets=[],\n            current_count=",
        # Not KEY_LEAKS: what is sent is masked again on the way out (config.without_keys),
        # so only the prepared messages (what a dry run shows) tell.
        ("tests/test_session.py::test_the_key_never_reaches_the_prepared_messages",),
    ),
    Mutation(
        "configured key not masked in explain/fix prompts (%glm explain/fix, buttons, CLI)",
        "glm_magic/core/session.py",
        "secrets=settings.keys_to_mask(),\n            reserve=settings.max_tokens,",
        "secrets=[],\n            reserve=settings.max_tokens,",
        (KEY_LEAKS,),
    ),
    Mutation(
        "configured key not masked in the explain/fix note",
        "glm_magic/core/assist.py",
        "summary = mask_secrets(failure.summary, secrets).text",
        "summary = failure.summary",
        (KEY_LEAKS,),
    ),
    Mutation(
        "configured key not masked in the panel's context preview",
        "glm_magic/widgets/app.py",
        "return list(settings.keys_to_mask())",
        "return []",
        (PANEL_PREVIEW,),
    ),
    Mutation(
        "configured key not masked in the CLI's saved outputs",
        "glm_magic/cli/cells.py",
        "value, n = mask_key(value, key.reveal())",
        "n = 0",
        (KEY_LEAKS,),
    ),
    Mutation(
        "Retry-After ignored by the backoff",
        "glm_magic/client/chat.py",
        'retry_after = getattr(error, "retry_after", None)',
        "retry_after = None",
        (f"{CLIENT}::test_retry_after_is_honoured",),
    ),
    Mutation(
        "Retry-After header not read",
        "glm_magic/client/errormap.py",
        "wait = retry_after(headers)",
        "wait = None",
        (f"{CLIENT}::test_retry_after_is_honoured",),
    ),
    Mutation(
        "set_next_input called twice on %glm fix",
        "glm_magic/ipython/cells.py",
        "    shell.set_next_input(code_cell_source(code, reply.model, reply.key), replace=False)\n",
        "    shell.set_next_input(code_cell_source(code, reply.model, reply.key), replace=False)\n"
        * 2,
        ("tests/kernel/test_explain_fix.py::test_fix_streams_and_inserts_exactly_one_cell",),
    ),
    Mutation(
        "the insertion note printed twice on %glm fix",
        "glm_magic/ipython/cells.py",
        _NOTE_BELOW,
        _NOTE_BELOW * 2,
        ("tests/kernel/test_explain_fix.py::test_fix_streams_and_inserts_exactly_one_cell",),
    ),
    Mutation(
        "the long-reply slow-down of display updates removed",
        "glm_magic/ipython/render.py",
        "interval = max(paced_interval(self.interval, self._render_cost), builder.chars / 50_000)",
        "interval = paced_interval(self.interval, self._render_cost)",
        ("tests/kernel/test_magic.py::test_long_replies_update_less_often",),
    ),
    Mutation(
        "glued frames ending in {...}data: [DONE] no longer split",
        "glm_magic/client/sse.py",
        r'_GLUE = re.compile(r"data:\s*(?=\{|\[DONE\])")',
        r'_GLUE = re.compile(r"data:\s*(?=\{)")',
        (
            "tests/test_sse.py::test_done_glued_to_the_last_frame_is_resplit",
            f"{CLIENT}::test_quirky_streams_still_succeed",
        ),
    ),
    Mutation(
        "a wrong Bearer value sent",
        "glm_magic/client/chat.py",
        'request.headers["Authorization"] = "Bearer " + self._key.reveal()',
        'request.headers["Authorization"] = "Bearer " + self._key.reveal()[:-1]',
        (f"{CLIENT}::test_key_is_sent_but_never_shown",),
    ),
    # -- others worth guarding -----------------------------------------------------------------
    Mutation(
        "retries not bounded by max_retries",
        "glm_magic/client/chat.py",
        "if not error.retryable or attempt > settings.max_retries:",
        "if not error.retryable or attempt > settings.max_retries + 1:",
        (f"{CLIENT}::test_retries_are_bounded",),
    ),
    Mutation(
        "kinds that are not retryable retried",
        "glm_magic/client/chat.py",
        "if not error.retryable or attempt > settings.max_retries:",
        "if attempt > settings.max_retries:",
        (f"{CLIENT}::test_not_retryable_kinds_are_not_retried",),
    ),
    Mutation(
        "close() no longer shuts the socket of a blocked read",
        "glm_magic/client/stream.py",
        "        if conn is not None:\n            conn.shutdown()\n",
        "",
        (
            f"{CLIENT}::test_close_before_the_response_headers_is_immediate",
            "tests/test_pooling.py::test_stop_on_a_reused_connection_closes_it",
        ),
    ),
    Mutation(
        "a reused connection's socket not told to the stream using it",
        "glm_magic/client/transport.py",
        "        self._claim()\n        self.tail_timeout = None",
        "        self.tail_timeout = None",
        ("tests/test_pooling.py::test_stop_on_a_reused_connection_closes_it",),
    ),
    Mutation(
        "streamed replies never reuse a connection",
        "glm_magic/client/transport.py",
        "max_keepalive_connections=max_keepalive,",
        "max_keepalive_connections=0,",
        ("tests/test_pooling.py::test_replies_reuse_one_connection",),
    ),
    Mutation(
        "no in-flight limit",
        "glm_magic/client/stream.py",
        "if not self._slots.try_acquire(self._settings.max_concurrent):",
        "if not self._slots.try_acquire(None):",
        ("tests/test_pooling.py::test_a_request_over_the_limit_waits_its_turn",),
    ),
    Mutation(
        "a 1302 does not lower the limit",
        "glm_magic/client/stream.py",
        "                        self._slots.refused()",
        "                        pass",
        ("tests/test_pooling.py::test_1302_lowers_the_limit_until_a_reply_succeeds",),
    ),
    Mutation(
        "a stream without finish_reason or [DONE] taken as complete",
        "glm_magic/client/stream.py",
        "if not done and builder.finish_reason is None:",
        "if False:",
        (f"{CLIENT}::test_stream_faults_keep_the_partial_text",),
    ),
    Mutation(
        "an error echoing the configured key not redacted",
        "glm_magic/errors.py",
        "text = mask_key(text, value)[0]",
        "text = text",
        (f"{CLIENT}::test_server_echoing_the_key_is_redacted",),
    ),
    Mutation(
        "the CLI's status line not throttled",
        "glm_magic/cli/report.py",
        "if not force and now - self._last < STATUS_INTERVAL:",
        "if False:",
        ("tests/test_cli.py::test_streaming_status_is_throttled_on_a_tty",),
    ),
    Mutation(
        "the panel updates on every token",
        "glm_magic/core/runner.py",
        "if now - last >= wait:",
        "if True:",
        (
            "tests/kernel/test_panel_kernel.py"
            "::test_reply_streams_in_the_background_with_coalesced_updates",
        ),
    ),
    Mutation(
        "%%glm display updates on every token",
        "glm_magic/ipython/render.py",
        "return time.monotonic() - self._last >= interval",
        "return True",
        ("tests/kernel/test_magic.py::test_coalescing_bound_for_a_2000_token_reply",),
    ),
    Mutation(
        "the peer crash hook skips a proxy killed by any signal",
        "tests/peer/conftest.py",
        "if code is None or -code not in _CRASH_SIGNALS:",
        "if code is None or code >= 0:",
        (CRASH_HOOK,),
    ),
    Mutation(
        "the peer crash hook skips any failure, not only a connection error to the proxy",
        "tests/peer/conftest.py",
        "        if not _connection_error_to(server, error):\n            continue\n",
        "",
        (CRASH_HOOK,),
    ),
    Mutation(
        "the peer crash hook skips without a cap",
        "tests/peer/conftest.py",
        "if len(_crash_skips) >= MAX_CRASH_SKIPS:",
        "if False:",
        (CRASH_HOOK,),
    ),
    Mutation(
        "the endpoint's Authorization digest not recorded",
        "glm_magic/testing/__init__.py",
        "digest = hashlib.sha256(auth.encode()).hexdigest() if auth is not None else None",
        "digest = None",
        ("tests/test_testing_server.py::test_keys_are_optional_and_masked_in_log",),
    ),
    # -- issue 13: cut replies, one-line usage errors, shared options, CLI progress --------
    Mutation(
        "a reply cut at the token limit raises again",
        "glm_magic/client/errormap.py",
        '    if reason == "model_context_window_exceeded":',
        '    if reason == "length":\n'
        "        return GenerationFailedError(reason, finish_reason=reason, partial=partial)\n"
        '    if reason == "model_context_window_exceeded":',
        (
            "tests/kernel/test_cut_replies.py::test_an_nbclient_run_goes_past_a_cut_reply",
            f"{CLIENT}::test_length_is_a_reply_not_an_error",
        ),
    ),
    Mutation(
        "a cut reply's note is not shown in the cell",
        "glm_magic/ipython/render.py",
        'error = (reply.error if show_error else "") or reply.note',
        'error = reply.error if show_error else ""',
        (
            "tests/kernel/test_cut_replies.py::test_a_user_cap_keeps_the_reply_and_the_next_cell_runs",
        ),
    ),
    Mutation(
        "a block a cut reply ended inside is inserted",
        "glm_magic/reply.py",
        "return join_code(self.text, closed_only=not self.complete)",
        "return join_code(self.text)",
        ("tests/kernel/test_cut_replies.py::test_insert_takes_only_closed_blocks",),
    ),
    Mutation(
        "a sub-command's bad option prints argparse's usage and exits",
        "glm_magic/ipython/options.py",
        '        raise UsageError(f"{self.prog}: {message}; {self.short_usage()}")',
        "        super().error(message)",
        ("tests/kernel/test_subcommand_options.py::test_a_bad_option_is_one_usage_error_line",),
    ),
    Mutation(
        "explain/fix ignore the shared sampling options",
        "glm_magic/ipython/assist_commands.py",
        "    settings = magics.settings(model=opts.model, **sampling_overrides(opts))",
        "    settings = magics.settings(model=opts.model)",
        ("tests/kernel/test_subcommand_options.py::test_sampling_options_are_shared",),
    ),
    Mutation(
        "no progress lines off a terminal",
        "glm_magic/cli/report.py",
        "if not self.console.tty and self.console.progress_every > 0:",
        "if False:",
        ("tests/test_cli.py::test_progress_lines_off_a_terminal_at_a_fixed_pace",),
    ),
    # -- issue 15/8: the HTML renderer's guards and the layer checker ------------------------
    Mutation(
        "model text put into the HTML unescaped",
        "glm_magic/htmlrender.py",
        "def _text(tokens: Sequence[Token], idx: int, options: Any, env: dict[str, Any]) -> str:\n"
        "    return escape(tokens[idx].content)",
        "def _text(tokens: Sequence[Token], idx: int, options: Any, env: dict[str, Any]) -> str:\n"
        "    return tokens[idx].content",
        (f"{HTML}::test_model_text_never_becomes_markup",),
    ),
    Mutation(
        "a literal $ left for MathJax to pair up as math",
        "glm_magic/htmlrender.py",
        'return html.escape(text, quote=True).replace("$", DOLLAR)',
        "return html.escape(text, quote=True)",
        (
            f"{HTML}::test_currency_never_becomes_math",
            f"{HTML}::test_footer_and_error_dollars_are_escaped",
        ),
    ),
    Mutation(
        "any link (relative, ftp:, //host) made a live link",
        "glm_magic/htmlrender.py",
        "return url.strip().lower().startswith(_SAFE_SCHEMES)",
        "return True",
        (f"{HTML}::test_links_markdown_it_accepts_but_we_do_not_stay_text",),
    ),
    Mutation(
        "the layer checker lets an upward import through",
        "tests/test_layers.py",
        "            if a < b:\n",
        "            if False:\n",
        ("tests/test_layers.py::test_the_checker_finds_planted_faults",),
    ),
    # -- issue 9: the notebook bridge's kernel side (its browser side: tests/browser) ----------
    Mutation(
        "bridge: another protocol version accepted",
        "glm_magic/bridge.py",
        "if version != VERSION:",
        "if False:",
        ("tests/test_bridge_protocol.py",),
    ),
    Mutation(
        "bridge: a snapshot pushed for another cell used as this cell's context",
        "glm_magic/ipython/bridge.py",
        "if running_cell(self.shell) is None:",
        "if True:",
        (f"{BRIDGE_KERNEL}::test_with_an_answer_insert_replace_and_context_use_the_bridge",),
    ),
    Mutation(
        "bridge: --insert joins the blocks into one cell",
        "glm_magic/ipython/bridge.py",
        "    blocks = _code_blocks(reply)\n",
        "    blocks = [reply.code] if reply.code.strip() else []\n",
        (f"{BRIDGE_KERNEL}::test_with_an_answer_insert_replace_and_context_use_the_bridge",),
    ),
    Mutation(
        "bridge: a malformed frontend message acted on",
        "glm_magic/ipython/bridge.py",
        "            self.dropped += 1\n            log.warning",
        '            self.handle(proto.Hello("x"))\n            log.warning',
        (f"{BRIDGE_KERNEL}::test_malformed_frontend_messages_are_dropped",),
    ),
    Mutation(
        "bridge: claims to insert without a bridge (no fallback)",
        "glm_magic/ipython/bridge.py",
        "    if found is None or here is None or not blocks:\n        return False",
        "    if found is None or here is None or not blocks:\n        return True",
        (f"{BRIDGE_KERNEL}::test_without_an_answer_everything_falls_back",),
    ),
    # -- issue 10: the bridge's agent operations (their browser side: tests/browser) --------
    Mutation(
        "bridge agent: cards sent to a frontend that did not name the agent feature",
        "glm_magic/ipython/bridge_agent.py",
        "if found is None or not found.supports(proto.AGENT):",
        "if found is None:",
        (
            f"{BRIDGE_AGENT}::test_the_agent_uses_the_bridge_only_when_the_frontend_names_the_feature",
        ),
    ),
    Mutation(
        "bridge agent: later steps inserted below the agent's cell, not below the last step",
        "glm_magic/ipython/bridge_agent.py",
        "after = self._last_key or self.cell_id or proto.ACTIVE",
        "after = self.cell_id or proto.ACTIVE",
        (f"{BRIDGE_AGENT}::test_steps_are_inserted_below_the_agent_cell_then_below_each_other",),
    ),
    Mutation(
        "bridge agent: a malformed step output sent on",
        "glm_magic/bridge_cells.py",
        'if name not in ("stdout", "stderr") or text is None:',
        "if text is None:",
        (
            "tests/test_bridge_cells.py",
            f"{BRIDGE_AGENT}::test_an_output_that_cannot_be_shown_becomes_a_note_and_the_step_is_still_inserted",
        ),
    ),
    # -- issue 11: replay, provenance, spending limits --------------------------------------
    Mutation(
        "replay: a stored answer never looked up",
        "glm_magic/core/replaying.py",
        'found = self.replay.lookup(key) if mode == "replay" else None',
        "found = None",
        (f"{REPLAY}::test_a_second_run_replays_every_turn_with_no_request",),
    ),
    Mutation(
        "replay: the temperature left out of the key",
        "glm_magic/core/store.py",
        '"temperature": settings.temperature,',
        "",
        (f"{REPLAY}::test_one_changed_input_makes_one_request",),
    ),
    Mutation(
        "replay: a damaged store emptied",
        "glm_magic/core/store.py",
        "        if self._db is not None:\n            self._db.close()  # reconnect",
        '        self.path.write_bytes(b"")\n        if self._db is not None:\n'
        "            self._db.close()  # reconnect",
        (f"{REPLAY}::test_a_truncated_store_file_is_one_line_and_the_request_goes_out",),
    ),
    Mutation(
        "replay: a saved answer trusted without its hash",
        "glm_magic/provenance.py",
        '    if text_hash(text) != entry.get("text_sha256"):',
        "    if False:",
        (f"{NBS}::test_tampered_metadata_is_ignored_with_one_line",),
    ),
    Mutation(
        "replay: the same cell inserted twice",
        "glm_magic/ipython/cells.py",
        "    existing = find_inserted(shell, reply.key)\n",
        "    existing = None\n",
        (f"{REPLAY}::test_insertion_is_idempotent",),
    ),
    Mutation(
        "budget: the limit ignored",
        "glm_magic/core/replay.py",
        "    if spent + cost > limit:",
        "    if False:",
        (f"{REPLAY}::test_the_budget_refuses_in_one_line",),
    ),
    # -- the notebook agent (issue 10) ----------------------------------------------------------
    Mutation(
        "agent: acting tools run without asking",
        "glm_magic/core/agent.py",
        "            if not self.task.approve_all:",
        "            if False:",
        (
            f"{AGENT}::test_a_tool_result_cannot_approve_anything",
            f"{AGENT}::test_a_declined_step_does_not_run_and_the_model_is_told",
        ),
    ),
    Mutation(
        "agent: a declined step runs anyway",
        "glm_magic/core/agent.py",
        '        elif decision == "skip":',
        '        elif decision == "never":',
        (f"{AGENT}::test_a_declined_step_does_not_run_and_the_model_is_told",),
    ),
    Mutation(
        "agent: 'all' approves only this step",
        "glm_magic/core/agent.py",
        '        if decision == "all":\n            self.task.approve_all = True',
        '        if decision == "all":\n            pass',
        (f"{AGENT}::test_approve_all_asks_once_for_the_task",),
    ),
    Mutation(
        "agent: tool results not masked",
        "glm_magic/core/agent.py",
        "        text = truncate_middle(self.clean(result), RESULT_CHARS)",
        "        text = truncate_middle(result, RESULT_CHARS)",
        (f"{AGENT}::test_secrets_in_variables_never_reach_a_request",),
    ),
    Mutation(
        "agent: a step's output shown unmasked",
        "glm_magic/ipython/agent.py",
        "    actions = KernelActions(shell, bridge, settings.model, settings.redactor())",
        "    actions = KernelActions(shell, bridge, settings.model)",
        (f"{AGENT}::test_the_key_is_masked_in_what_a_step_shows",),
    ),
    Mutation(
        "agent: no step limit",
        "glm_magic/core/agent.py",
        "                if len(loop.task.steps) >= limits.max_steps:",
        "                if False:",
        (f"{AGENT}::test_max_steps_ends_the_task_and_keeps_the_transcript",),
    ),
    Mutation(
        "agent: no budget",
        "glm_magic/core/agent.py",
        "        if spent + upcoming > budget:",
        "        if False:",
        (f"{AGENT}::test_the_budget_stops_before_a_request_that_could_pass_it",),
    ),
    Mutation(
        "agent: the session's spending limit skipped",
        "glm_magic/core/agent.py",
        "        self.session.check_budget(prepared, pending=self.task.cost or 0.0)",
        "        pass",
        (f"{AGENT}::test_the_session_spending_limit_holds_for_every_turn",),
    ),
    Mutation(
        "agent: bad calls unbounded",
        "glm_magic/core/agent.py",
        "            if loop.task.bad_calls >= MAX_BAD_CALLS:",
        "            if False:",
        (f"{AGENT}::test_endless_bad_calls_are_bounded",),
    ),
    Mutation(
        "agent: headless input treated as a yes",
        "glm_magic/ipython/agent.py",
        '                    self.headless = True\n                    decision = "unasked"',
        '                    decision = "run"',
        (f"{AGENT}::test_headless_runs_nothing_and_says_so_in_one_line",),
    ),
    Mutation(
        "agent: an interrupted step goes on",
        "glm_magic/core/agent.py",
        "        except (StoppedError, KeyboardInterrupt) as exc:",
        "        except ZeroDivisionError as exc:",
        (f"{AGENT}::test_interrupt_during_a_step_ends_the_task_and_reports_the_step",),
    ),
    # -- issue 10: the endpoint's scripted tool calling, tool-call assembly ------------------
    Mutation(
        "endpoint: tool_stream fragments joined under index 0",
        "glm_magic/testing/plan.py",
        'deltas.append({"tool_calls": [{"index": i, "function"',
        'deltas.append({"tool_calls": [{"index": 0, "function"',
        (f"{ENDPOINT_AGENT}::test_tool_stream_sends_head_then_argument_fragments_by_index",),
    ),
    Mutation(
        "endpoint: every assistant message counts as an agent turn",
        "glm_magic/testing/agent_scripts.py",
        'm.get("role") == "assistant" and m.get("tool_calls"))',
        'm.get("role") == "assistant")',
        (f"{ENDPOINT_AGENT}::test_turns_are_counted_by_assistant_messages_with_tool_calls",),
    ),
    Mutation(
        "endpoint: the demo goes on after a declined step",
        "glm_magic/testing/agent_scripts.py",
        '        if step.result.startswith((DECLINED, "Not run:")):',
        "        if False:",
        (f"{ENDPOINT_AGENT}::test_demo_declined_answers_without_running_anything_more",),
    ),
    Mutation(
        "endpoint: the demo's fix miscomputes revenue",
        "glm_magic/testing/agent_scripts.py",
        'row["units"] * row["price"]',
        'row["units"] + row["price"]',
        (f"{ENDPOINT_AGENT}::test_buggy_code_fails_and_fixed_code_prints_the_table",),
    ),
    Mutation(
        "assembly: the last argument fragment replaces the others",
        "glm_magic/reply.py",
        "            call.arguments += event.arguments",
        "            call.arguments = event.arguments or call.arguments",
        (f"{ASSEMBLY}::test_calls_assemble_from_any_chunking",),
    ),
    Mutation(
        "assembly: calls that reuse an index (index -1 on each) are merged",
        "glm_magic/reply.py",
        "if call is not None and event.id and event.name and call.id and event.id != call.id:",
        "if False:",
        (f"{ASSEMBLY}::test_index_minus_one_in_separate_chunks",),
    ),
    Mutation(
        "assembly: a fragment with another id (and no name) starts a new call",
        "glm_magic/reply.py",
        "if call is not None and event.id and event.name and call.id and event.id != call.id:",
        "if call is not None and event.id and call.id and event.id != call.id:",
        (f"{ASSEMBLY}::test_fragments_with_another_id_stay_with_their_call",),
    ),
)


def _copy(dest: Path) -> None:
    for name in COPIED:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(src, dest / name)


def _pytest(copy: Path, tests: tuple[str, ...], env: dict[str, str]) -> tuple[int, str]:
    """Run ``tests`` in the copy; return pytest's exit code and the output's tail.

    0 is all passed, 1 is a test failed; anything else (collection error, no test found)
    means the run says nothing about the mutation.
    """
    cmd = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *tests]
    proc = subprocess.run(cmd, cwd=copy, env=env, capture_output=True, text=True, check=False)
    return proc.returncode, (proc.stdout + proc.stderr)[-1500:]


def _check_patterns(copy: Path, mutations: list[Mutation]) -> list[str]:
    problems = []
    for m in mutations:
        found = (copy / m.path).read_text().count(m.old)
        if found != 1:
            problems.append(
                f"{m.name}: pattern found {found} times in {m.path} (expected once): {m.old!r}"
            )
    return problems


def main(argv: list[str] | None = None) -> int:
    """Apply each mutation to a temporary copy, run its tests, report; 0 when all are caught."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-k", default="", help="only mutations whose name contains this")
    parser.add_argument("--list", action="store_true", help="list the mutations and exit")
    args = parser.parse_args(argv)
    chosen = [m for m in MUTATIONS if args.k.lower() in m.name.lower()]
    if args.list:
        for m in chosen:
            print(f"{m.name}  [{m.path}]")
        return 0
    with tempfile.TemporaryDirectory(prefix="glm-mutate-") as tmp:
        copy = Path(tmp)
        _copy(copy)
        problems = _check_patterns(copy, chosen)
        if problems:
            print("mutate: patterns no longer found; update scripts/mutate.py:", file=sys.stderr)
            for problem in problems:
                print(f"  {problem}", file=sys.stderr)
            return 2
        env = {**os.environ, "PYTHONPATH": str(copy), "PYTHONDONTWRITEBYTECODE": "1"}
        where = subprocess.run(
            [sys.executable, "-c", "import glm_magic; print(glm_magic.__file__)"],
            cwd=copy,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        if not Path(where).is_relative_to(copy):
            print(f"mutate: the copy is not the package imported ({where})", file=sys.stderr)
            return 2
        # The chosen tests must pass unmutated, or a "caught" would mean nothing.
        every = tuple(dict.fromkeys(t for m in chosen for t in m.tests))
        code, tail = _pytest(copy, every, env)
        if code != 0:
            print(f"mutate: the tests fail without any mutation:\n{tail}", file=sys.stderr)
            return 2
        survived: list[str] = []
        broken: list[str] = []
        started = time.monotonic()
        for m in chosen:
            target = copy / m.path
            original = target.read_text()
            target.write_text(original.replace(m.old, m.new, 1))
            began = time.monotonic()
            try:
                code, tail = _pytest(copy, m.tests, env)
            finally:
                target.write_text(original)
            took = time.monotonic() - began
            verdict = {0: "SURVIVED", 1: "caught  "}.get(code, "ERROR   ")
            print(f"{verdict}  {m.name}  ({took:.0f} s)", flush=True)
            if code == 0:
                survived.append(m.name)
            elif code != 1:  # not a test failure: the mutation broke the run itself
                broken.append(m.name)
                print(tail, flush=True)
        total = time.monotonic() - started
        caught = len(chosen) - len(survived) - len(broken)
        print(f"\n{caught} of {len(chosen)} mutations caught in {total:.0f} s")
        for name in survived:
            print(f"  survived: {name}")
        for name in broken:
            print(f"  error (no test verdict): {name}")
        return 1 if survived or broken else 0


if __name__ == "__main__":
    sys.exit(main())
