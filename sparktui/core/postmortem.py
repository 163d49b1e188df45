"""Why a device dropped: the evidence a reboot leaves, and what it points to.

When a device comes back after a drop, its boot id tells a reboot from a lost
network. After a reboot, one command (EVIDENCE_SCRIPT, run once, never in
steady state) prints what is left: the new boot id and uptime, the previous
boot's kernel log tail (`journalctl -k -b -1`) and the files in /sys/fs/pstore.
`classify` turns that into one of the causes below, with the lines that say so.

Pure: parse_evidence takes any text (fuzzed) and never raises.
"""

from __future__ import annotations

import enum
import re
import shlex
from dataclasses import dataclass, field

from sparktui.core.gpuhealth import parse_xid
from sparktui.core.memtruth import parse_boot_id

__all__ = [
    "EVIDENCE_COMMAND", "EVIDENCE_MARKER", "Cause", "Evidence", "Verdict", "classify",
    "notable_lines", "parse_evidence",
]

EVIDENCE_MARKER = "sparktui-postmortem"
JOURNAL_LINES = 400
PSTORE_BYTES = 65536  # per file: a panic's console tail is a few KiB
MAX_EVIDENCE_LINES = 40

# journalctl needs the adm or systemd-journal group for kernel lines; pstore files
# are root's: both fall back to `sudo -n` (never a password prompt).
EVIDENCE_SCRIPT = rf"""read -r b < "${{SPARKTUI_ROOT-}}/proc/sys/kernel/random/boot_id"
echo "boot $b"
read -r up rest < "${{SPARKTUI_ROOT-}}/proc/uptime"; echo "uptime $up"
echo "--- journal"
j() {{ journalctl -k -b -1 -n {JOURNAL_LINES} --no-pager -o short-iso 2>&1; }}
out=$(j); s=$?
case $out in *"No journal files"*|*"not seeing messages"*|*"Permission denied"*|'')
  o2=$(sudo -n journalctl -k -b -1 -n {JOURNAL_LINES} --no-pager -o short-iso 2>/dev/null) \
    && {{ out=$o2; s=0; }} ;; esac
printf '%s\n' "$out"
echo "--- journal-status $s"
echo "--- pstore"
for f in "${{SPARKTUI_ROOT-}}"/sys/fs/pstore/*; do
  [ -f "$f" ] || continue
  echo "=== file ${{f##*/}}"
  head -c {PSTORE_BYTES} "$f" 2>/dev/null || sudo -n head -c {PSTORE_BYTES} "$f" 2>&1
  echo
done
echo "--- end"
"""
EVIDENCE_COMMAND = f"sh -c {shlex.quote(EVIDENCE_SCRIPT)} {EVIDENCE_MARKER}"


@dataclass(frozen=True)
class Evidence:
    boot_id: str | None = None
    uptime_s: float | None = None
    journal: tuple[str, ...] = ()  # the previous boot's kernel log tail
    journal_problem: str | None = None  # why it could not be read (no persistent journal...)
    pstore: dict[str, str] = field(default_factory=dict)  # file name -> text


_FILE = re.compile(r"=== file ([A-Za-z0-9_.:-]{1,128})")


def parse_evidence(text: str) -> Evidence:
    """The output of EVIDENCE_COMMAND -> Evidence; tolerant of cuts and noise."""
    if not isinstance(text, str):
        return Evidence()
    boot = uptime = None
    journal: list[str] = []
    pstore: dict[str, list[str]] = {}
    status: int | None = None
    section = "head"
    current: list[str] | None = None
    for raw in text[:4_000_000].splitlines():
        line = raw.rstrip("\r")
        if line == "--- journal":
            section = "journal"
            continue
        if line.startswith("--- journal-status "):
            value = line.rsplit(" ", 1)[-1]
            status = int(value) if value.isdigit() and len(value) < 4 else None
            section = "between"
            continue
        if line == "--- pstore":
            section = "pstore"
            continue
        if line == "--- end":
            break
        if section == "head":
            if line.startswith("boot "):
                boot = parse_boot_id(line[5:])
            elif line.startswith("uptime "):
                uptime = _float(line[7:])
        elif section == "journal":
            if len(journal) < 4 * JOURNAL_LINES:
                journal.append(line)
        elif section == "pstore":
            match = _FILE.fullmatch(line)
            if match:
                current = pstore.setdefault(match.group(1), []) if len(pstore) < 64 else None
            elif current is not None and len(current) < 4000:
                current.append(line)
    problem = None
    if status not in (None, 0) or _NO_JOURNAL.search("\n".join(journal[:5])):
        problem = ("the previous boot's kernel log could not be read"
                   + (f": {journal[0][:200]}" if journal else ""))
        journal = []
    journal = [line for line in journal if line.strip() and not line.startswith("-- ")]
    return Evidence(boot, uptime, tuple(journal), problem,
                    {name: "\n".join(lines) for name, lines in pstore.items()})


def _float(text: str) -> float | None:
    try:
        value = float(text.strip())
    except ValueError:
        return None
    return value if 0 <= value < 1e10 else None


_NO_JOURNAL = re.compile(r"No journal files|Specifying boot ID or boot offset has no effect|"
                         r"Data from the specified boot .* is not available|"
                         r"not seeing messages|Permission denied", re.I)


class Cause(enum.Enum):
    NETWORK = "network only"
    POWER = "power loss or hard reset"
    PANIC = "kernel panic"
    GPU_WEDGE = "GPU driver wedge"
    OOM = "OOM kill"
    CLEAN = "clean reboot"


_PANIC = re.compile(r"Kernel panic|not syncing|\bOops\b|BUG: unable to handle|"
                    r"Internal error: Oops|Call trace:", re.I)
_GPU = re.compile(r"NV_ERR_NO_MEMORY|\bXid\b|fallen off the bus|RmInitAdapter failed|"
                  r"GPU has fallen|nvidia-modeset: ERROR|NVRM: .*(?:failed|error|timeout)", re.I)
_OOM = re.compile(r"invoked oom-killer|Out of memory: Killed process|oom-kill:|"
                  r"oom_reaper", re.I)
_HUNG = re.compile(r"blocked for more than \d+ seconds|hung_task", re.I)
_CLEAN = re.compile(r"reboot: (?:Restarting system|Power down)|systemd-shutdown|"
                    r"Stopped target|Reached target .*(?:Shutdown|Reboot)", re.I)
_NOTABLE = re.compile("|".join(p.pattern for p in (_PANIC, _GPU, _OOM, _HUNG)) + "|NVRM", re.I)


def notable_lines(lines: tuple[str, ...] | list[str]) -> list[str]:
    """The kernel log lines a post-mortem quotes: NVRM, Xid, oom-kill, hung task, panic."""
    return [line for line in lines if _NOTABLE.search(line)]


@dataclass(frozen=True)
class Verdict:
    cause: Cause
    summary: str  # one sentence
    evidence: tuple[str, ...]  # the lines that say so (device text: sanitise for display)
    rebooted: bool

    def as_json(self) -> dict:
        return {"cause": self.cause.value, "summary": self.summary,
                "evidence": list(self.evidence), "rebooted": self.rebooted}


def classify(previous_boot: str | None, evidence: Evidence,
             last_uptime_s: float | None = None) -> Verdict:
    """What happened, from the boot id seen before the drop and what the device says now."""
    seen = f" (last uptime seen {last_uptime_s / 3600:.1f} h)" if last_uptime_s else ""
    now_boot = evidence.boot_id
    if previous_boot is not None and now_boot is not None and previous_boot == now_boot:
        up = (f"; up {evidence.uptime_s / 3600:.1f} h" if evidence.uptime_s is not None else "")
        return Verdict(Cause.NETWORK, f"the device did not reboot (same boot id{up}): only "
                       "the connection was lost", (), False)
    journal = list(evidence.journal)
    panics = [f"pstore {name}: {line.strip()}" for name, text in evidence.pstore.items()
              for line in text.splitlines() if _PANIC.search(line)]
    panics += [line for line in journal if _PANIC.search(line)]
    if panics:
        return Verdict(Cause.PANIC, f"the kernel panicked{seen}", _cap(panics), True)
    gpu = [line for line in journal if _GPU.search(line) or _HUNG.search(line)]
    if any(_GPU.search(line) for line in gpu):
        xids = [x.describe() for line in gpu if (x := parse_xid(line)) is not None]
        detail = f" ({'; '.join(dict.fromkeys(xids))})" if xids else ""
        return Verdict(Cause.GPU_WEDGE, f"the GPU driver wedged the box{detail}{seen}: the "
                       "kernel log ends in NVRM errors", _cap(gpu), True)
    oom = [line for line in journal if _OOM.search(line) or _HUNG.search(line)]
    if any(_OOM.search(line) for line in oom):
        return Verdict(Cause.OOM, f"memory ran out and the kernel killed processes{seen}; "
                       "the box then stopped answering", _cap(oom), True)
    tail = journal[-3:]
    if any(_CLEAN.search(line) for line in journal[-30:]):
        return Verdict(Cause.CLEAN, f"someone rebooted or shut the device down{seen}",
                       _cap([line for line in journal[-30:] if _CLEAN.search(line)]), True)
    why = (evidence.journal_problem or "the previous boot's kernel log just stops, with no "
           "panic, GPU or memory error and no shutdown")
    return Verdict(Cause.POWER, f"the device rebooted without a trace: {why}{seen}",
                   tuple(tail), True)


def _cap(lines: list[str]) -> tuple[str, ...]:
    unique = list(dict.fromkeys(line.strip() for line in lines if line.strip()))
    return tuple(line[:400] for line in unique[-MAX_EVIDENCE_LINES:])
