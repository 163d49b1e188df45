"""`sparktui bench`: a small load test of one model endpoint.

    sparktui bench [--endpoint URL | --device DEVICE | --demo] --model M
                   [--requests N] [--concurrency C] [--max-tokens T] [--json]
    sparktui bench ... --sweep [--depths 0,2048] [--levels 1,2] [--pp 512] [--tg 32]

N streamed requests, C at a time. Reported: TTFT p50/p95, tokens/s per
stream (p50 and mean) and in total (all tokens over the wall time), errors,
and, for an endpoint on a device, the GPU energy of the run and tokens per
joule from the device's telemetry. The same services as the Chat tab do the
work (sparktui.services.chat), so the figures mean the same thing. --sweep
reports pp and tg tokens/s by depth and concurrency (commands/bench_sweep.py).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from typing import Any

from sparktui.commands.chat import EXIT_FAILED, EXIT_INTERRUPTED, add_target_arguments
from sparktui.commands.target import TargetError, open_target
from sparktui.commands.target import say as _say

DEFAULT_PROMPT = ("Explain in a few paragraphs what unified memory means on a DGX Spark, "
                  "with a short Python example.")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: must be at least 1")
    return value


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="sparktui bench",
        description="A small load test of an OpenAI-compatible endpoint: TTFT, tokens/s, "
                    "errors and, on a device, tokens per joule.")
    add_target_arguments(p)
    p.add_argument("--requests", type=_positive_int, default=8, metavar="N",
                   help="requests in all (default 8)")
    p.add_argument("--concurrency", type=_positive_int, default=2, metavar="C",
                   help="requests at a time (default 2)")
    p.add_argument("--max-tokens", type=_positive_int, default=128, metavar="T",
                   help="max tokens per answer (default 128)")
    p.add_argument("--prompt", default=DEFAULT_PROMPT, help="the prompt every request sends")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--sweep", action="store_true",
                   help="prompt processing and generation tokens/s by context depth and "
                        "concurrency, in the table Spark Arena and llama-benchy publish")
    p.add_argument("--depths", default="0,2048", metavar="D,D",
                   help="with --sweep: context tokens before the new prompt (default 0,2048)")
    p.add_argument("--levels", default="1,2", metavar="C,C",
                   help="with --sweep: requests at a time, one cell each (default 1,2)")
    p.add_argument("--pp", type=_positive_int, default=512, metavar="N",
                   help="with --sweep: new prompt tokens per request (default 512)")
    p.add_argument("--tg", type=_positive_int, default=32, metavar="N",
                   help="with --sweep: tokens generated per request (default 32)")
    return p


async def run_bench(target, *, requests: int, concurrency: int, max_tokens: int,
                    prompt: str) -> dict[str, Any]:
    """Run the load and return the report (the same dict --json prints)."""
    from sparktui.core.openai_stats import percentile
    from sparktui.services.chat import ChatRequest, EnergyMeter

    gate = asyncio.Semaphore(concurrency)
    request = ChatRequest(target.model, [{"role": "user", "content": prompt}],
                          max_tokens=max_tokens)
    meter = EnergyMeter(target.telemetry) if target.telemetry is not None else None
    results: list[Any] = []

    async def one() -> None:
        async with gate:
            stream = await target.chat.answer(target.spec, request)
            async for _piece in stream:
                pass
            results.append(stream)

    if meter is not None:
        meter.start()
    started = time.monotonic()
    try:
        await asyncio.gather(*(one() for _ in range(requests)))
    finally:
        ended = time.monotonic()
        if meter is not None:
            meter.stop()
    ok = [s for s in results if s.outcome.ok]
    errors = [s.outcome.error or s.outcome.status for s in results if not s.outcome.ok]
    ttfts = [s.figures.ttft_s for s in ok if s.figures.ttft_s is not None]
    rates = [r for s in ok if (r := s.figures.tokens_per_s()) is not None]
    tokens = sum(s.figures.tokens for s in ok)
    wall = ended - started
    energy = meter.energy(started, ended) if meter is not None else None
    estimated = any(s.figures.estimated for s in ok)

    def r(value: float | None, digits: int = 3) -> float | None:
        return None if value is None else round(value, digits)

    return {
        "endpoint": target.spec.url, "device": target.spec.device, "model": target.model,
        "requests": requests, "concurrency": concurrency, "max_tokens": max_tokens,
        "ok": len(ok), "errors": len(errors), "error_messages": sorted(set(errors))[:5],
        "wall_s": r(wall), "tokens": tokens, "tokens_estimated": estimated,
        "ttft_p50_s": r(percentile(ttfts, 50)), "ttft_p95_s": r(percentile(ttfts, 95)),
        "stream_tokens_per_s_p50": r(percentile(rates, 50), 2),
        "stream_tokens_per_s_mean": r(sum(rates) / len(rates), 2) if rates else None,
        "total_tokens_per_s": r(tokens / wall, 2) if wall > 0 else None,
        "energy_j": r(energy, 2),
        "tokens_per_j": r(tokens / energy, 4) if energy and tokens else None,
    }


def render(report: dict[str, Any]) -> str:
    def show(value: Any, unit: str = "") -> str:
        return "-" if value is None else f"{value}{unit}"

    where = report["endpoint"] + (f" on {report['device']}" if report["device"] else "")
    approx = " (estimated from chunks)" if report["tokens_estimated"] else ""
    lines = [
        f"endpoint   {where}",
        f"model      {report['model']}",
        f"requests   {report['requests']} ({report['concurrency']} at a time, "
        f"max {report['max_tokens']} tokens): {report['ok']} ok, {report['errors']} errors",
        f"TTFT       p50 {show(report['ttft_p50_s'], ' s')}   "
        f"p95 {show(report['ttft_p95_s'], ' s')}",
        f"per stream p50 {show(report['stream_tokens_per_s_p50'], ' tok/s')}   "
        f"mean {show(report['stream_tokens_per_s_mean'], ' tok/s')}",
        f"in total   {show(report['total_tokens_per_s'], ' tok/s')} "
        f"({report['tokens']} tokens{approx} in {report['wall_s']} s)",
    ]
    if report["device"]:
        lines.append(f"energy     {show(report['energy_j'], ' J')}   "
                     f"{show(report['tokens_per_j'], ' tok/J')} (GPU power from telemetry)")
    for message in report["error_messages"]:
        lines.append(f"error      {message}")
    return "\n".join(lines)


async def _run(args: argparse.Namespace) -> int:
    try:
        target = await open_target(args)
    except TargetError as exc:
        _say(str(exc))
        return EXIT_FAILED
    try:
        if args.sweep:
            return await _sweep(args, target)
        report = await run_bench(target, requests=args.requests, concurrency=args.concurrency,
                                 max_tokens=args.max_tokens, prompt=args.prompt)
    finally:
        await target.close()
    print(json.dumps(report, indent=2) if args.json else render(report))
    return EXIT_FAILED if report["ok"] == 0 else 0


async def _sweep(args: argparse.Namespace, target) -> int:
    from sparktui.commands.bench_sweep import parse_levels, render_table, run_sweep

    try:
        depths, levels = parse_levels(args.depths), parse_levels(args.levels)
    except ValueError as exc:
        _say(str(exc))
        return EXIT_FAILED
    rows = await run_sweep(target, depths=depths, concurrencies=tuple(max(1, c) for c in levels),
                           pp=args.pp, tg=args.tg)
    print(json.dumps(rows, indent=2) if args.json else render_table(rows))
    return EXIT_FAILED if all(row["tokens_per_s"] is None for row in rows) else 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    from sparktui.commands.status import quiet_logging

    restore = quiet_logging()
    try:
        return asyncio.run(_run(args))
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    finally:
        restore()
