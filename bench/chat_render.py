"""What rendering a streamed answer costs the app, per token, at high token rates.

The app runs headless (Textual's test driver: every frame is composed, nothing is
written to a terminal) with the demo device, whose model server streams at
--rates tokens/s. For each rate the same answer (--tokens long) is fetched twice
through the same SSH connection and endpoint:

- render: typed into the Chat tab and sent; streamed as the Chat tab does it (a
  plain tail, complete blocks as Markdown chunks, the whole answer one chunk at the
  end), status line at 4 Hz, auto-scroll: everything the user sees;
- drain: the same request through the same ChatService, its text thrown away.

CPU is the whole process's (`time.process_time`, all threads; the simulated Spark
and its model server run in-process too and cost the same in both modes), from
send to the last token shown. Overhead per token = (render - drain) / tokens.
"lag" is how long after the last token arrived the answer's body held all of it
(frames are batched; a renderer that cannot keep up shows a lag).

    python bench/chat_render.py
    python bench/chat_render.py --rates 500,2000 --tokens 2000 --runs 2
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import benchlib

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


async def _until(pilot, predicate, timeout: float = 60.0) -> None:
    # asyncio.sleep, not pilot.pause: pilot.pause forces a screen update each time, 100
    # frames a second that a real terminal would not draw (a third of the CPU measured)
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met in time")
        await asyncio.sleep(0.01)


def _save_profile(profiler, name: str, *, show_all: bool) -> None:
    """Stop pyinstrument's profiler, if one runs, and write its report under results/."""
    if profiler is None:
        return
    profiler.stop()
    out = benchlib.RESULTS_DIR / name
    out.write_text(profiler.output_text(unicode=False, color=False, show_all=show_all))
    print(f"profile: {out}", flush=True)


def demo_app():
    """The real SparkApp on the demo, its conversations in a temporary home."""
    from sparktui.cli import start_simulated_demo
    from sparktui.services import demo
    from sparktui.services.config import Config
    from sparktui.ui.app import SparkApp

    tmp = tempfile.mkdtemp(prefix="chat-render-")
    os.environ["XDG_DATA_HOME"] = tmp  # the bench's conversations never reach the real home
    demo.provide(start_simulated_demo)  # as the command line does
    return SparkApp(Config(path=Path(tmp) / "config.toml"), [], demo=True,
                    theme_dirs=[REPO / "themes"])


async def measure(rates: list[float], seconds: float, runs: int,
                  profile: float | None = None) -> list[dict[str, object]]:
    from sparktui.core.device import LinkState
    from sparktui.services.chat import ChatRequest
    from sparktui.ui.chat.answer import AnswerBody
    from sparktui.ui.chat.input import ChatInput
    from sparktui.ui.chat.message import ChatMessageView
    from sparktui.ui.chat.pane import ChatPane

    app = demo_app()
    rows: list[dict[str, object]] = []
    async with app.run_test(size=(120, 40)) as pilot:
        await _until(pilot, lambda: app.demo is not None and app.fleet.links
                     and app.fleet.links[0].status.state is LinkState.CONNECTED)
        sim = app.demo.openai  # type: ignore[union-attr]
        await pilot.press("5")
        pane = app.query_one(ChatPane)
        await _until(pilot, lambda: pane.selected_model() is not None)
        endpoint, model = pane.selected_endpoint(), pane.selected_model()
        assert endpoint is not None and model is not None
        await pilot.pause(2)  # let the first telemetry ticks settle
        for rate in rates:
            sim.token_rate = rate
            tokens = max(100, int(rate * seconds))  # an answer of `seconds` at this rate
            sim.min_tokens = tokens
            pane.query_one("#chat-max-tokens").value = str(tokens)
            for _run in range(runs):
                # drain: the same bytes over the same forward, nothing drawn
                request = ChatRequest(model, [{"role": "user", "content": "bench"}],
                                      max_tokens=tokens)
                cpu0, wall0 = time.process_time(), time.monotonic()
                stream = await pane.chat.answer(endpoint.spec, request)
                async for _piece in stream:
                    pass
                drain_cpu = time.process_time() - cpu0
                drain_wall = time.monotonic() - wall0
                drained = stream.figures.tokens

                # render: as the user does it
                await pilot.press("ctrl+t")
                await pilot.pause(0.2)
                box = app.query_one(ChatInput)
                box.insert("bench")
                profiler = None
                if profile is not None and rate == profile:
                    from pyinstrument import Profiler

                    profiler = Profiler(async_mode="disabled")
                    profiler.start()
                cpu0, wall0 = time.process_time(), time.monotonic()
                await pilot.press("enter")
                await _until(pilot, lambda: pane.answer is not None
                             and pane.answer.finished.is_set(), timeout=120)
                answer = pane.answer
                arrived = time.monotonic()
                view = list(app.query(ChatMessageView))[-1]
                await _until(pilot, lambda v=view, a=answer: v.message.status == "done"
                             and v.query_one(AnswerBody).source == a.text, timeout=120)
                shown = time.monotonic()
                render_cpu = time.process_time() - cpu0
                _save_profile(profiler, f"chat_render_profile_{rate:.0f}.txt", show_all=False)
                render_wall = shown - wall0
                count = answer.figures.tokens
                shown_text = view.query_one(AnswerBody).source
                rows.append({
                    "asked_tokens": tokens, "lost_tokens": tokens - count,
                    "screen_has_whole_answer": shown_text == answer.text,
                    "render_cpu_pct_of_core": round(100 * render_cpu / render_wall, 1),
                    "drain_cpu_pct_of_core": round(100 * drain_cpu / drain_wall, 1),
                    "rendering_cpu_pct_of_core": round(
                        100 * (render_cpu - drain_cpu * render_wall / drain_wall) / render_wall,
                        1),
                    "rate_tok_s": rate, "tokens": count, "drain_tokens": drained,
                    "measured_tok_s": round(answer.figures.tokens_per_s() or 0, 1),
                    "drain_cpu_s": round(drain_cpu, 3), "render_cpu_s": round(render_cpu, 3),
                    "drain_wall_s": round(drain_wall, 3), "render_wall_s": round(render_wall, 3),
                    "render_us_per_token": round(1e6 * render_cpu / count, 1),
                    "drain_us_per_token": round(1e6 * drain_cpu / drained, 1),
                    "overhead_us_per_token": round(1e6 * (render_cpu / count
                                                          - drain_cpu / drained), 1),
                    "render_cpu_pct": round(100 * render_cpu / render_wall, 1),
                    "lag_s": round(shown - arrived, 3),
                })
                print(f"rate {rate:>6.0f}: {rows[-1]['overhead_us_per_token']} us/token "
                      f"overhead, lag {rows[-1]['lag_s']} s", flush=True)
        await pilot.press("ctrl+t")
    return rows


async def markdown_floor(tokens: int) -> dict[str, object]:
    """CPU of building the finished answer once, in a bare app, as Textual's Markdown
    widget (each block is widgets: a floor under any way of streaming into it) and as
    the chat's one Markdown chunk (sparktui.ui.chat.answer)."""
    from textual.app import App, ComposeResult
    from textual.containers import VerticalScroll
    from textual.widgets import Markdown

    from sparktui.sim.servers.openai import tokens_for
    from sparktui.ui.chat.answer import AnswerBody

    text = "".join(tokens_for("bench", tokens))

    class Bare(App):
        def compose(self) -> ComposeResult:
            yield VerticalScroll(id="log")

    app = Bare()
    async with app.run_test(size=(120, 40)) as pilot:
        cpu0 = time.process_time()
        markdown = Markdown(text)
        await app.query_one("#log").mount(markdown)
        await pilot.pause()
        cpu = time.process_time() - cpu0
        widgets = len(list(markdown.query("*")))
        await markdown.remove()
        await pilot.pause()
        cpu0 = time.process_time()
        body = AnswerBody(text)
        await app.query_one("#log").mount(body)
        await pilot.pause()
        chunk_cpu = time.process_time() - cpu0
    return {"tokens": tokens, "chars": len(text), "widgets": widgets, "cpu_s": round(cpu, 3),
            "chunk_cpu_s": round(chunk_cpu, 3)}


async def direct(rates: list[float], seconds: float, runs: int,
                 profile: float | None = None) -> list[dict[str, object]]:
    """Rendering alone: the answer's pieces written straight into an answer view of the
    real app (Chat tab shown, demo device connected), paced at each rate; its CPU
    against the same app idle for the same time just before. No model server, HTTP or
    SSH in the window, so no "drain" to subtract: less noise on a busy machine."""
    from sparktui.core.device import LinkState
    from sparktui.services.conversations import Message
    from sparktui.sim.servers.openai import tokens_for
    from sparktui.ui.chat.message import ChatMessageView

    app = demo_app()
    rows: list[dict[str, object]] = []
    async with app.run_test(size=(120, 40)) as pilot:
        await _until(pilot, lambda: app.demo is not None and app.fleet.links
                     and app.fleet.links[0].status.state is LinkState.CONNECTED)
        await pilot.press("5")
        await pilot.pause(2)
        log_view = app.query_one("#chat-log")
        # a first answer, not measured: the first code block of a process compiles its
        # lexer's regular expressions (pygments, about 0.5 s here), once per process
        warm = ChatMessageView(Message("assistant", "", status="streaming"))
        await log_view.mount(warm)
        body = warm.start_stream()
        body.write("".join(tokens_for("bench", 100)))
        await warm.end_stream()
        await pilot.pause()
        await warm.remove()
        for rate in rates:
            pieces = tokens_for("bench", max(100, int(rate * seconds)))
            for _run in range(runs):
                user = ChatMessageView(Message("user", "bench"))
                view = ChatMessageView(Message("assistant", "", status="streaming"))
                await log_view.mount_all([user, view])
                await asyncio.sleep(0.5)
                cpu0, wall0 = time.process_time(), time.monotonic()
                await asyncio.sleep(seconds)  # the same app, idle
                idle_cpu = time.process_time() - cpu0
                idle_wall = time.monotonic() - wall0
                profiler = None
                if profile is not None and rate == profile:
                    from pyinstrument import Profiler

                    profiler = Profiler(async_mode="disabled")
                    profiler.start()
                cpu0, wall0 = time.process_time(), time.monotonic()
                body = view.start_stream()
                for index, piece in enumerate(pieces):
                    body.write(piece)
                    due = wall0 + (index + 1) / rate
                    await asyncio.sleep(max(0.0, due - time.monotonic()))
                arrived = time.monotonic()
                await view.end_stream()
                await asyncio.sleep(0)  # the last frame's refresh is scheduled
                shown = time.monotonic()
                cpu = time.process_time() - cpu0
                wall = shown - wall0
                _save_profile(profiler, f"chat_direct_profile_{rate:.0f}.txt", show_all=True)
                rows.append({
                    "mode": "direct", "rate_tok_s": rate, "tokens": len(pieces),
                    "render_cpu_s": round(cpu, 3), "render_wall_s": round(wall, 3),
                    "idle_cpu_s": round(idle_cpu, 3), "idle_wall_s": round(idle_wall, 3),
                    "rendering_cpu_pct_of_core": round(
                        100 * (cpu / wall - idle_cpu / idle_wall), 1),
                    "lag_s": round(shown - arrived, 3),
                })
                print(f"rate {rate:>6.0f}: rendering {rows[-1]['rendering_cpu_pct_of_core']} "
                      f"% of a core (app {100 * cpu / wall:.1f} %, idle "
                      f"{100 * idle_cpu / idle_wall:.1f} %)", flush=True)
                await user.remove()
                await view.remove()
    return rows


def medians(rows: list[dict[str, object]]) -> list[dict[str, object]]:
    """One row per rate with the median of each figure over its runs (load varies)."""
    out = []
    for rate in sorted({r["rate_tok_s"] for r in rows}):
        runs = [r for r in rows if r["rate_tok_s"] == rate]
        row: dict[str, object] = {"median_of": len(runs)}
        for key, value in runs[0].items():
            if isinstance(value, bool) or not isinstance(value, int | float):
                row[key] = all(r[key] for r in runs) if isinstance(value, bool) else value
            else:
                row[key] = statistics.median(r[key] for r in runs)
        out.append(row)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="CPU cost per token of rendering a streamed answer")
    p.add_argument("--rates", default="50,200,1000,2000",
                   help="token rates of the simulated model server, tok/s")
    p.add_argument("--seconds", type=float, default=6.0,
                   help="length of each answer, in seconds at its rate (6)")
    p.add_argument("--runs", type=int, default=1, help="answers per rate and mode (1)")
    p.add_argument("--profile", type=float, default=None, metavar="RATE",
                   help="profile the rendered answer at this rate with pyinstrument")
    p.add_argument("--floor", type=int, default=None, metavar="TOKENS",
                   help="only: CPU of mounting a finished answer of TOKENS as Markdown")
    p.add_argument("--direct", action="store_true",
                   help="rendering alone: pieces written into an answer view, no server")
    p.add_argument("--out", default="chat_render")
    args = p.parse_args(argv)
    if args.floor is not None:
        floor = asyncio.run(markdown_floor(args.floor))
        print(f"Markdown of {floor['tokens']} tokens ({floor['chars']} characters): "
              f"{floor['widgets']} widgets, {floor['cpu_s']} s CPU to mount and lay out; "
              f"as one Markdown chunk: {floor['chunk_cpu_s']} s")
        return 0
    rates = [float(r) for r in args.rates.split(",") if r.strip()]
    load = open("/proc/loadavg", encoding="ascii").read().split()[:3]
    if args.direct:
        rows = asyncio.run(direct(rates, args.seconds, args.runs, args.profile))
        rows = rows + medians(rows) if args.runs > 1 else rows
        benchlib.print_table(
            ["rate", "tokens", "app CPU s", "idle CPU s", "rendering %core", "lag s"],
            [[f'{r["rate_tok_s"]}{" median" if "median_of" in r else ""}', r["tokens"],
              r["render_cpu_s"], r["idle_cpu_s"], r["rendering_cpu_pct_of_core"], r["lag_s"]]
             for r in rows],
            title=f"Chat rendering alone (pieces into an answer view), load {load}")
        path = benchlib.write_results(args.out, {"seconds": args.seconds, "loadavg": load,
                                                 "mode": "direct", "rows": rows})
        print(f"\nresults: {path}")
        return 0
    rows = asyncio.run(measure(rates, args.seconds, args.runs, args.profile))
    rows = rows + medians(rows) if args.runs > 1 else rows
    benchlib.print_table(
        ["rate", "tokens", "lost", "whole on screen", "process %core", "drain %core",
         "rendering %core", "overhead us/tok", "lag s"],
        [[f'{r["rate_tok_s"]}{" median" if "median_of" in r else ""}', r["tokens"],
          r["lost_tokens"], r["screen_has_whole_answer"],
          r["render_cpu_pct_of_core"], r["drain_cpu_pct_of_core"],
          r["rendering_cpu_pct_of_core"], r["overhead_us_per_token"], r["lag_s"]]
         for r in rows],
        title=f"Chat rendering cost (headless app, demo device over SSH), load {load}")
    path = benchlib.write_results(args.out, {"seconds": args.seconds, "loadavg": load,
                                             "rows": rows})
    print(f"\nresults: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
