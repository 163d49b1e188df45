"""`sparktui bench --sweep`: prompt processing and generation by context depth and concurrency.

The shape Spark Arena and llama-benchy publish, so figures can be set side by
side: one row per test, `pp512 @ d4096` (512 new prompt tokens after 4096 of
context already in the prompt) and `tg32 @ d4096` (32 generated tokens after
them), each at every concurrency asked for, with tokens/s in total and per
request, the time to first token, and tokens per joule from the device's GPU
power: a cell's tokens (prompt and generated) over the cell's energy, given on
both of its rows, since the GPU works on both at once.

Prompt lengths are made of plain words, about one token each; the server's
own prompt_tokens (from its usage chunk) are reported and used when it sends
them, and the row says "~" when a count is an estimate.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

FILLER = ("spark unified memory token model server stream energy power answer chat data "
          "code block time first second fast small large").split()


def prompt_of(words: int, salt: int) -> str:
    """About `words` tokens; the salt keeps a prefix cache from answering every request."""
    body = " ".join(FILLER[(i + salt) % len(FILLER)] for i in range(max(1, words)))
    return f"[{salt}] {body}\nSummarise the text above."


def parse_levels(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise ValueError(f"{text!r} is not a list of whole numbers such as 0,2048") from None
    if not values or any(v < 0 for v in values):
        raise ValueError(f"{text!r}: give one or more numbers, none negative")
    return values


async def run_sweep(target, *, depths: tuple[int, ...], concurrencies: tuple[int, ...],
                    pp: int, tg: int) -> list[dict[str, Any]]:
    """Every (depth, concurrency) cell: its pp row and its tg row."""
    from sparktui.services.chat import ChatRequest, EnergyMeter

    rows: list[dict[str, Any]] = []
    salt = int(time.time())
    for depth in depths:
        for level in concurrencies:
            requests = [ChatRequest(target.model, [{"role": "user", "content":
                                                    prompt_of(depth + pp, salt + i)}],
                                    max_tokens=tg) for i in range(max(1, level))]
            salt += level
            meter = EnergyMeter(target.telemetry) if target.telemetry is not None else None
            if meter is not None:
                meter.start()
            started = time.monotonic()
            streams = await asyncio.gather(*(_one(target, r) for r in requests))
            ended = time.monotonic()
            if meter is not None:
                meter.stop()
            energy = meter.energy(started, ended) if meter is not None else None
            rows += _cell_rows(target.model, depth, level, pp, tg, streams, ended - started,
                               energy)
    return rows


async def _one(target, request):
    stream = await target.chat.answer(target.spec, request)
    async for _piece in stream:
        pass
    return stream


def _cell_rows(model: str, depth: int, level: int, pp: int, tg: int, streams: list,
               wall: float, energy: float | None) -> list[dict[str, Any]]:
    ok = [s for s in streams if s.outcome.ok and s.figures.first_token is not None]
    prompt_counts = [s.figures.prompt_tokens for s in ok]
    prompt_estimated = any(c is None for c in prompt_counts) or not ok
    prompts = [c if c is not None else depth + pp for c in prompt_counts]
    ttfts = [s.figures.first_token - s.figures.started for s in ok]
    gens = [(s.figures.tokens - 1, s.figures.last_token - s.figures.first_token) for s in ok
            if s.figures.last_token is not None and s.figures.tokens > 1]
    pp_per = [n / t for n, t in zip(prompts, ttfts, strict=True) if t > 0]
    tg_per = [n / t for n, t in gens if t > 0]
    # in total: all prompt tokens over the longest wait for a first token (they were
    # processed together), all generated tokens over the longest generation
    pp_total = sum(prompts) / max(ttfts) if ttfts and max(ttfts) > 0 else None
    longest = max((t for _n, t in gens), default=0.0)
    tg_total = sum(n for n, _t in gens) / longest if longest > 0 else None
    tokens = sum(prompts) + sum(s.figures.tokens for s in ok)
    per_joule = tokens / energy if energy and tokens else None
    errors = len(streams) - len(ok)

    def r(value: float | None, digits: int = 2) -> float | None:
        return None if value is None else round(value, digits)

    common = {"model": model, "depth": depth, "concurrency": level, "errors": errors,
              "tokens_per_j": r(per_joule, 4), "energy_j": r(energy), "wall_s": r(wall, 3)}
    return [
        {**common, "test": f"pp{pp} @ d{depth}", "tokens_per_s": r(pp_total),
         "tokens_per_s_per_request": r(sum(pp_per) / len(pp_per)) if pp_per else None,
         "ttft_ms": r(1000 * sum(ttfts) / len(ttfts)) if ttfts else None,
         "estimated": prompt_estimated},
        {**common, "test": f"tg{tg} @ d{depth}", "tokens_per_s": r(tg_total),
         "tokens_per_s_per_request": r(sum(tg_per) / len(tg_per)) if tg_per else None,
         "ttft_ms": None, "estimated": any(s.figures.estimated for s in ok)},
    ]


def render_table(rows: list[dict[str, Any]]) -> str:
    """A Markdown table in llama-benchy's shape, plus concurrency and tokens per joule."""
    def show(value: Any, approx: bool = False) -> str:
        if value is None:
            return "—"
        return f"~{value}" if approx else str(value)

    lines = ["| model | test | c | t/s | t/s per req | ttft (ms) | tok/J |",
             "|---|---|---:|---:|---:|---:|---:|"]
    for row in rows:
        lines.append(f"| {row['model']} | {row['test']} | {row['concurrency']} | "
                     f"{show(row['tokens_per_s'], row['estimated'])} | "
                     f"{show(row['tokens_per_s_per_request'], row['estimated'])} | "
                     f"{show(row['ttft_ms'])} | {show(row['tokens_per_j'])} |")
    errors = sum(row["errors"] for row in rows) // 2
    if errors:
        lines.append(f"\n{errors} request(s) failed")
    return "\n".join(lines)
