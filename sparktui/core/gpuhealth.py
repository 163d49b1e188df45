"""GPU health from the nvidia-smi stream: Xid errors, clock event reasons, stuck low power.

- Xid lines (printed between rows in loop mode, and in the kernel log as
  `NVRM: Xid (PCI:...): 79, pid=..., ...`) become events with the Xid's meaning.
- Clock event reasons are counted per reason (seconds seen), so "held back by SW
  power cap 42 s" can be told from a blip.
- "Stuck low power": a GB10 whose USB-PD negotiation went wrong runs its SM clock
  far under 900 MHz at full utilisation in P0; only a full AC power cycle fixes it.

Pure: the services feed samples and lines in. Text from the device is quoted in
the events: sanitise before display.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from sparktui.core.nvsmi import EVENT_REASONS, GpuSample

__all__ = [
    "STUCK_CLOCK_MHZ", "STUCK_SECONDS", "STUCK_UTIL_PCT", "XID_MEANINGS", "ReasonCounter",
    "StuckLowPower", "XidEvent", "parse_xid", "xid_meaning",
]

#: common Xids (NVIDIA's Xid catalogue), in a GB10 owner's words
XID_MEANINGS: dict[int, str] = {
    13: "graphics engine exception (often an application bug or bad memory access)",
    31: "GPU memory page fault (an application touched memory it does not own)",
    32: "invalid or corrupted push buffer stream",
    43: "GPU stopped processing (a user application fault)",
    45: "preemptive cleanup after an earlier error (the process was ended)",
    48: "double-bit ECC error: the GPU needs a reset",
    61: "internal micro-controller breakpoint/warning (driver firmware)",
    62: "internal micro-controller halt (driver firmware): reset the GPU",
    63: "ECC page retirement or row remapping recorded",
    64: "ECC page retirement or row remapping failed",
    69: "graphics engine class error",
    74: "NVLink error",
    79: "GPU has fallen off the bus: power, thermal or hardware fault; reboot",
    92: "high single-bit ECC error rate",
    94: "contained ECC error: the affected application must restart",
    95: "uncontained ECC error: reset the GPU",
    109: "context switch timeout",
    119: "GSP RPC timeout: the GPU firmware stopped answering; reset or reboot",
    120: "GSP error: the GPU firmware hit an error; reset or reboot",
    154: "GPU recovery action changed: a reset or reboot is required",
}

_XID = re.compile(r"\bXid\b(?:\s*\([^)\n]{0,80}\))?\s*:?\s*(\d{1,4})\b(.{0,300})", re.I)


@dataclass(frozen=True, slots=True)
class XidEvent:
    xid: int
    detail: str  # the rest of the line, raw from the device: sanitise before display

    @property
    def meaning(self) -> str:
        return xid_meaning(self.xid)

    def describe(self) -> str:
        return f"Xid {self.xid}: {self.meaning}"


def xid_meaning(xid: int) -> str:
    return XID_MEANINGS.get(xid, "see NVIDIA's Xid catalogue")


def parse_xid(line: str) -> XidEvent | None:
    """`NVRM: Xid (PCI:0000:01:00): 79, pid=1234, GPU has fallen off the bus.` -> XidEvent."""
    if not isinstance(line, str):
        return None
    match = _XID.search(line[:2000])
    if not match:
        return None
    return XidEvent(int(match.group(1)), match.group(2).strip(" ,."))


# ------------------------------------------------------------------- event reasons

@dataclass
class ReasonCounter:
    """Seconds each clock event reason was seen active, per GPU."""

    seconds: dict[int, dict[str, float]] = field(default_factory=dict)  # gpu -> name -> s
    _last_t: dict[int, float] = field(default_factory=dict)

    def update(self, sample: GpuSample) -> None:
        last = self._last_t.get(sample.index)
        self._last_t[sample.index] = sample.t
        if last is None or sample.event_reasons is None:
            return
        step = sample.t - last
        if not 0 < step < 30:  # a gap (a reconnect) is not time spent throttled
            return
        counts = self.seconds.setdefault(sample.index, {})
        for bit, name in EVENT_REASONS.items():
            if sample.event_reasons & bit:
                counts[name] = counts.get(name, 0.0) + step

    def describe(self, gpu: int) -> str | None:
        counts = self.seconds.get(gpu)
        if not counts:
            return None
        top = sorted(counts.items(), key=lambda kv: -kv[1])
        return ", ".join(f"{name} {secs:.0f} s" for name, secs in top)


# ----------------------------------------------------------------- stuck low power

STUCK_CLOCK_MHZ = 900.0
STUCK_UTIL_PCT = 80.0
STUCK_SECONDS = 30.0


@dataclass
class StuckLowPower:
    """Watches one GPU for "SM clock < 900 MHz at > 80 % utilisation in P0 for 30 s"."""

    since: float | None = None
    reported: bool = False

    def update(self, sample: GpuSample) -> str | None:
        """The advice, once, when the condition has held STUCK_SECONDS; else None."""
        clock, util = sample.sm_clock_mhz, sample.util_gpu
        low = (clock is not None and util is not None and clock < STUCK_CLOCK_MHZ
               and util > STUCK_UTIL_PCT and (sample.pstate or "").upper() == "P0")
        if not low:
            self.since = None
            self.reported = False
            return None
        if self.since is None:
            self.since = sample.t
        if self.reported or sample.t - self.since < STUCK_SECONDS:
            return None
        self.reported = True
        return (f"GPU {sample.index} runs at {clock:.0f} MHz at {util:.0f} % utilisation in P0 "
                f"for {sample.t - self.since:.0f} s: it looks stuck in a low-power mode (a bad "
                "USB-PD negotiation). A full AC power cycle fixes it: shut down, unplug the "
                "power for 30 s, plug in again.")
