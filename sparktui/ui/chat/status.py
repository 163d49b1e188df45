"""The live status line under the chat: TTFT, tokens/s, tokens, and the device's GPU."""

from __future__ import annotations

from rich.text import Text

from sparktui.core.openai_stats import StreamFigures
from sparktui.core.sanitize import strip_control
from sparktui.services.chat import GpuNow
from sparktui.ui.widgets.repaint import LiveStatic


def live_text(figures: StreamFigures, now: float, device: str | None,
              gpu: GpuNow | None) -> Text:
    """While generating: '● 2.1 s · TTFT 0.12 s · 245.3 tok/s · 312 tokens │ GPU 92% 53 W'."""
    text = Text()
    text.append("● ", style="bold")
    text.append(f"{now - figures.started:.1f} s")
    ttft = figures.ttft_s
    text.append(" · TTFT " + (f"{ttft:.2f} s" if ttft is not None else "…"))
    rate = figures.tokens_per_s(now)
    if rate is not None:
        text.append(f" · {rate:.1f} tok/s")
    count = f"{'≈' if figures.estimated else ''}{figures.tokens} tokens"
    text.append(f" · {count}")
    text.append_text(gpu_text(device, gpu))
    text.append("   esc stops", style="dim")
    return text


def gpu_text(device: str | None, gpu: GpuNow | None) -> Text:
    text = Text()
    if device is None or gpu is None:
        return text
    text.append(f"  │ {strip_control(device, max_line=30)} GPU ")
    text.append("?" if gpu.util_pct is None else f"{gpu.util_pct:.0f}%")
    if gpu.power_w is not None:
        text.append(f" {gpu.power_w:.0f} W")
    return text


def final_text(figures: StreamFigures, status: str, notes: list[str]) -> Text:
    """After the answer: the same figures, plus energy and tokens per joule when known."""
    text = Text()
    mark = {"done": "✓ ", "stopped": "■ stopped · ", "error": "✗ "}.get(status, "")
    text.append(mark, style="bold")
    text.append(f"{'≈' if figures.estimated else ''}{figures.tokens} tokens")
    if figures.ttft_s is not None:
        text.append(f" · TTFT {figures.ttft_s:.2f} s")
    rate = figures.tokens_per_s()
    if rate is not None:
        text.append(f" · {rate:.1f} tok/s")
    if figures.energy_j is not None:
        text.append(f" · ≈{figures.energy_j:.1f} J")
        per_j = figures.tokens_per_joule
        if per_j is not None:
            text.append(f" · {per_j:.2f} tok/J")
    for note in notes:
        text.append(f" · {note}", style="dim")
    return text


class ChatStatus(LiveStatic):
    """One line; the pane refreshes it a few times a second while an answer streams."""

    def show(self, text: Text | str) -> None:
        # its size is fixed by CSS (one line, full width): no layout pass, which would
        # re-arrange the whole conversation, and only the figures that moved are repainted
        super().show(text if isinstance(text, Text) else Text(text))
