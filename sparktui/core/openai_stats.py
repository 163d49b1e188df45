"""The figures of one streamed answer: time to first token, tokens/s, energy.

Pure arithmetic on timestamps (seconds of one monotonic clock) so the chat
tab, `sparktui chat --json` and `sparktui bench` report the same numbers.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass


@dataclass
class StreamFigures:
    """Collected while an answer streams; read at any time for the live status line."""

    started: float  # the request was sent
    first_token: float | None = None
    last_token: float | None = None
    ended: float | None = None
    chunks: int = 0  # chunks that carried text: the estimate when the server sends no usage
    usage_tokens: int | None = None  # completion_tokens from the server, when it sent them
    prompt_tokens: int | None = None
    energy_j: float | None = None

    def on_text(self, now: float) -> None:
        if self.first_token is None:
            self.first_token = now
        self.last_token = now
        self.chunks += 1

    @property
    def tokens(self) -> int:
        return self.usage_tokens if self.usage_tokens is not None else self.chunks

    @property
    def estimated(self) -> bool:
        """True when `tokens` counts chunks (a chunk is usually, not always, one token)."""
        return self.usage_tokens is None

    @property
    def ttft_s(self) -> float | None:
        return None if self.first_token is None else self.first_token - self.started

    def tokens_per_s(self, now: float | None = None) -> float | None:
        """Decode rate: tokens after the first over the time since the first.

        The first token's wait is prompt processing, reported as TTFT; folding it
        in would make a long prompt look like slow generation.
        """
        if self.first_token is None:
            return None
        end = self.last_token if (now is None or self.ended is not None) else now
        if end is None:
            return None
        span = end - self.first_token
        if self.tokens < 2 or span <= 0:
            return None
        return (self.tokens - 1) / span

    @property
    def duration_s(self) -> float | None:
        return None if self.ended is None else self.ended - self.started

    @property
    def tokens_per_joule(self) -> float | None:
        if not self.energy_j or self.energy_j <= 0 or not self.tokens:
            return None
        return self.tokens / self.energy_j

    def as_dict(self) -> dict[str, float | int | bool | None]:
        def r(value: float | None, digits: int = 4) -> float | None:
            return None if value is None else round(value, digits)

        return {
            "ttft_s": r(self.ttft_s),
            "tokens": self.tokens,
            "tokens_estimated": self.estimated,
            "tokens_per_s": r(self.tokens_per_s(), 2),
            "duration_s": r(self.duration_s),
            "prompt_tokens": self.prompt_tokens,
            "energy_j": r(self.energy_j, 2),
            "tokens_per_j": r(self.tokens_per_joule, 4),
        }


def integrate_power(samples: Iterable[tuple[float, float]], start: float,
                    end: float) -> float | None:
    """Joules drawn between `start` and `end` from (time, watts) samples.

    Trapezoids between samples, clipped to the window: the power at each edge
    is interpolated between its neighbouring readings, or the nearest reading
    holds where there is only one side (no slope is guessed beyond the data).
    None without a reading at or before the window's end.
    """
    points = sorted((t, w) for t, w in samples if math.isfinite(t) and math.isfinite(w))
    if end <= start or not points:
        return None
    before = [p for p in points if p[0] <= start]
    inside = [p for p in points if start < p[0] < end]
    after = [p for p in points if p[0] >= end]
    if not before and not inside:
        return None
    edge_start = (start, _at(start, before[-1] if before else None,
                             inside[0] if inside else (after[0] if after else None)))
    last_known = inside[-1] if inside else before[-1]
    edge_end = (end, _at(end, last_known, after[0] if after else None))
    series = [edge_start, *inside, edge_end]
    return sum((t1 - t0) * (w0 + w1) / 2 for (t0, w0), (t1, w1) in itertools.pairwise(series))


def _at(t: float, left: tuple[float, float] | None,
        right: tuple[float, float] | None) -> float:
    """Power at t: interpolated between the neighbours, or the one there is."""
    if left is None:
        assert right is not None
        return right[1]
    if right is None or right[0] == left[0]:
        return left[1]
    share = (t - left[0]) / (right[0] - left[0])
    return left[1] + share * (right[1] - left[1])


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0..100), linear between ranks; None for no values."""
    data = sorted(values)
    if not data:
        return None
    if len(data) == 1:
        return data[0]
    rank = (len(data) - 1) * q / 100
    low = math.floor(rank)
    high = min(low + 1, len(data) - 1)
    return data[low] + (data[high] - data[low]) * (rank - low)


def describe_figures(figures: dict | None) -> str:
    """The figures of an answer as one line: '312 tokens · TTFT 0.12 s · 245 tok/s · ...'."""
    if not figures:
        return ""
    parts: list[str] = []
    tokens = figures.get("tokens")
    if tokens is not None:
        parts.append(f"{'≈' if figures.get('tokens_estimated') else ''}{tokens} tokens")
    if figures.get("ttft_s") is not None:
        parts.append(f"TTFT {figures['ttft_s']:.2f} s")
    if figures.get("tokens_per_s") is not None:
        parts.append(f"{figures['tokens_per_s']:.1f} tok/s")
    if figures.get("energy_j") is not None:
        parts.append(f"≈{figures['energy_j']:.1f} J")
    if figures.get("tokens_per_j") is not None:
        parts.append(f"{figures['tokens_per_j']:.2f} tok/J")
    return " · ".join(parts)
