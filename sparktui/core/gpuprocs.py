"""The GPU-process loop: compute apps joined with /proc, in one long-lived channel.

Listing GPU processes used to be two SSH execs every few seconds
(`nvidia-smi --query-compute-apps` and `ps`), and every exec makes the user's
login shell read their `.bashrc` (pyenv, conda or nvm init: ~0.1 s of CPU each).
Instead one `bash -c SCRIPT sparktui-gpuprocs PERIOD_MS` per connection keeps ONE
`nvidia-smi --query-compute-apps ... -lms PERIOD_MS` running (a start of nvidia-smi
costs a device far more than a sample of a running one), and reads each new
process's /proc/PID/{status,cgroup,cmdline} with shell builtins, printing a block
per sample:

    --- sparktui-gpuprocs <0, or nvidia-smi's exit status when it ended>
    app <a raw --query-compute-apps row, or a line of nvidia-smi's error text>
    proc <pid> <uid> <user name, or nothing when /etc/passwd does not know it>
    cgroup <pid> <a line of /proc/PID/cgroup, e.g. 0::/system.slice/docker-ab12.scope>
    cmdline <pid> <arguments joined by \\x1f (newlines inside one became spaces)>
    --- end

The proc/cgroup/cmdline lines come once per pid, in the first block that lists
it (again if the pid leaves the list and comes back): keep them per pid.

The loop reads control lines on its stdin (the channel), so the period can
follow what is on screen without a new exec:

    period <ms>     sample every <ms> from now on (and sample at once)
    poll            sample at once

The loop ends as soon as the channel closes (EOF on stdin). Where bash is
missing, a POSIX sh script runs nvidia-smi once per period at a fixed period,
without command lines (sh's `read` cannot split on NUL), and prints every
detail in every block.

Pure: no I/O here. The services layer writes the command and control lines
and feeds the stream's lines to GpuProcsBlockParser.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterable
from dataclasses import dataclass

from sparktui.core.nvsmi import ComputeApp, parse_compute_apps

__all__ = [
    "ARG_SEPARATOR",
    "GPUPROCS_MARKER",
    "GpuProcsBlock",
    "GpuProcsBlockParser",
    "ProcessDetail",
    "container_id_from_cgroup",
    "control_line",
    "gpuprocs_command",
]

GPUPROCS_MARKER = "sparktui-gpuprocs"
BLOCK_BEGIN = f"--- {GPUPROCS_MARKER} "  # then nvidia-smi's exit status
BLOCK_END = "--- end"
ARG_SEPARATOR = "\x1f"  # between command-line arguments (ASCII unit separator)

MIN_PERIOD_MS = 200
# A block that never ends (a broken loop, garbage) must not grow memory forever.
MAX_BLOCK_LINES = 4096
MAX_CGROUP_LINES = 64  # per process: v1 hierarchies are a dozen, v2 is one line

QUERY = ("--query-compute-apps=gpu_uuid,pid,process_name,used_memory "
         "--format=csv,noheader,nounits")

# What /proc says about the pid in $p, with builtins only (POSIX sh and bash alike).
_DETAIL = r"""detail() {
  u= n=
  { while read -r k v r; do
      case $k in Uid:) u=$v; break ;; esac
    done < "${SPARKTUI_ROOT-}/proc/$p/status"; } 2>/dev/null
  [ -n "$u" ] || return 0
  { while IFS=: read -r a b c r; do
      [ "$c" = "$u" ] && { n=$a; break; }
    done < "${SPARKTUI_ROOT-}/etc/passwd"; } 2>/dev/null
  printf 'proc %s %s %s\n' "$p" "$u" "$n"
  { while IFS= read -r c; do
      printf 'cgroup %s %s\n' "$p" "$c"
    done < "${SPARKTUI_ROOT-}/proc/$p/cgroup"; } 2>/dev/null
  CMDLINE
}
pid_of() { p=${1#*,}; p=${p%%,*}; p=${p# }; case $p in ''|*[!0-9]*) p= ;; esac; }
"""
_CMDLINE = r"""c=
  { while IFS= read -r -d '' a || [ -n "$a" ]; do
      c=$c${a//$'\n'/ }$'\037'
    done < "${SPARKTUI_ROOT-}/proc/$p/cmdline"; } 2>/dev/null
  printf 'cmdline %s %s\n' "$p" "${c%$'\037'}"
"""

# bash: ONE nvidia-smi for the life of the channel, looping by itself (-lms), read on
# fd 3. Its rows for one sample come in one write; 50 ms of silence ends the burst
# and the block. No row for 1.5 periods + 0.5 s: the list is empty (an empty
# sample prints nothing). /proc is read once per new pid. Every half second of
# silence stdin is checked for control lines; a new period (or "poll") restarts
# nvidia-smi, a process start on the device but no SSH exec; stdin's EOF (the
# channel closed) ends it all.
GPUPROCS_BASH = r"""ms=${1:-3000}
case $ms in ''|*[!0-9]*) ms=3000 ;; esac
DETAIL
declare -A seen now
start() {
  [ "$ms" -ge 200 ] || ms=200
  quiet=$(( ms * 3 / 2 + 500 ))
  exec 3< <(exec nvidia-smi QUERY -lms "$ms" </dev/null 2>&1)
  np=$! idle=0
}
stop() { kill "$np" 2>/dev/null; exec 3<&-; wait "$np" 2>/dev/null; }
emit() {
  printf '%s\n' "--- sparktui-gpuprocs $1"
  now=()
  for l in "${rows[@]}"; do
    [ -n "$l" ] || continue
    printf 'app %s\n' "$l"
    pid_of "$l"
    [ -n "$p" ] || continue
    now[$p]=1
    [ -n "${seen[$p]}" ] || detail
  done
  seen=()
  for p in "${!now[@]}"; do seen[$p]=1; done
  printf '%s\n' "--- end"
  rows=() idle=0
}
control() {
  while read -r -t 0; do
    if ! read -r c a; then stop; exit 0; fi
    case $c$a in
      period*[!0-9]*|period) ;;
      period*) stop; ms=$a; start ;;
      poll*) stop; start ;;
    esac
  done
}
rows=()
start
while :; do
  if [ ${#rows[@]} -gt 0 ]; then t=0.05; else t=0.5; fi
  if IFS= read -r -t "$t" -u 3 l; then
    rows+=("$l")
    continue
  elif [ $? -le 128 ]; then
    wait "$np"; st=$?
    emit "$st"
    exec 3<&-
    if read -r -t "$(( ms / 1000 + 1 ))" c a; then
      case $c$a in period*[!0-9]*|period) ;; period*) ms=$a ;; esac
    elif [ $? -le 128 ]; then
      exit 0
    fi
    start
    continue
  fi
  if [ ${#rows[@]} -gt 0 ]; then
    emit 0
  else
    idle=$((idle + 500))
    [ "$idle" -lt "$quiet" ] || emit 0
  fi
  control
done
""".replace("DETAIL", _DETAIL.replace("CMDLINE", _CMDLINE)).replace("QUERY", QUERY)

# sh without bash: an nvidia-smi per period, a fixed period, no control lines and
# no command lines (sh's read cannot split on NUL); the rest as under bash.
GPUPROCS_SH = r"""ms=${1:-3000}
case $ms in ''|*[!0-9]*) ms=3000 ;; esac
[ "$ms" -ge 200 ] || ms=200
s=$((ms / 1000)).$(printf '%03d' $((ms % 1000)))
DETAIL
while :; do
  out=$(nvidia-smi QUERY </dev/null 2>&1)
  printf '%s\n' "--- sparktui-gpuprocs $?"
  while IFS= read -r l; do
    [ -n "$l" ] || continue
    printf 'app %s\n' "$l"
    pid_of "$l"
    [ -z "$p" ] || detail
  done <<END_OF_ROWS
$out
END_OF_ROWS
  printf '%s\n' "--- end"
  sleep "$s" || exit 0
done
""".replace("DETAIL", _DETAIL.replace("CMDLINE", ":")).replace("QUERY", QUERY)


def gpuprocs_command(period_ms: int) -> str:
    """The command line to send to the device: bash where it exists, else sh."""
    period = max(MIN_PERIOD_MS, int(period_ms))
    # `command -v` is a builtin of every login shell: choosing costs no process.
    # --norc: a bash started under sshd (SSH_CLIENT set, SHLVL back at 1 after the
    # login shell's exec) would read ~/.bashrc a second time.
    return (f"if command -v bash >/dev/null 2>&1; then exec bash --norc -c "
            f"{shlex.quote(GPUPROCS_BASH)} {GPUPROCS_MARKER} {period}; else exec sh -c "
            f"{shlex.quote(GPUPROCS_SH)} {GPUPROCS_MARKER} {period}; fi")


def control_line(period_ms: int | None = None) -> str:
    """A line for the loop's stdin: a new period (and a poll now), or just a poll now."""
    if period_ms is None:
        return "poll\n"
    return f"period {max(MIN_PERIOD_MS, int(period_ms))}\n"


# ------------------------------------------------------------------------ parsing

_CONTAINER_ID = re.compile(r"(?:^|[/-])([0-9a-f]{64})(?:\.scope)?(?:/|$)")


def container_id_from_cgroup(path: str) -> str | None:
    """The 64-hex container id in a cgroup path, if the process runs in a container.

    Docker with systemd:  /system.slice/docker-<id>.scope
    Docker (cgroupfs):    /docker/<id>
    containerd / k8s:     /kubepods/.../cri-containerd-<id>.scope, /kubepods/pod.../<id>
    """
    if not isinstance(path, str):
        return None
    match = _CONTAINER_ID.search(path)
    return match.group(1) if match else None


@dataclass(frozen=True, slots=True)
class ProcessDetail:
    """What /proc says about one GPU process: who runs it, where, and how it was started."""

    pid: int
    uid: int | None = None
    user: str | None = None  # raw from the device: sanitise before display
    cgroups: tuple[str, ...] = ()  # raw /proc/PID/cgroup lines ("0::/path" on cgroup v2)
    cmdline: tuple[str, ...] | None = None  # None: not read (sh fallback or unreadable)

    @property
    def cgroup_path(self) -> str | None:
        """The path that places the process: the first that names a container (on a
        cgroup v1 or hybrid host Docker's is a v1 path), else the v2 line, else the
        first v1 path."""
        paths = [line.split(":", 2)[2] for line in self.cgroups if line.count(":") >= 2]
        for path in paths:
            if container_id_from_cgroup(path):
                return path
        for line in self.cgroups:
            if line.startswith("0::"):
                return line[3:]
        return paths[0] if paths else None

    @property
    def container_id(self) -> str | None:
        for line in self.cgroups:
            found = container_id_from_cgroup(line.split(":", 2)[-1])
            if found:
                return found
        return None

    @property
    def command(self) -> str | None:
        """The command line as `ps -o args` shows it, or None when unknown."""
        if not self.cmdline:
            return None
        return " ".join(self.cmdline)


@dataclass(frozen=True, slots=True)
class GpuProcsBlock:
    """One poll: nvidia-smi's exit status, its rows, and the /proc details by pid."""

    exit_status: int | None
    apps: tuple[ComputeApp, ...]
    details: dict[int, ProcessDetail]
    error_text: str  # the lines of nvidia-smi's output that were not rows

    @property
    def ok(self) -> bool:
        return self.exit_status == 0


class _Draft:
    def __init__(self, status: int | None) -> None:
        self.status = status
        self.rows: list[str] = []
        self.procs: dict[int, dict[str, object]] = {}
        self.lines = 0

    def proc(self, pid: int) -> dict[str, object]:
        return self.procs.setdefault(pid, {"cgroups": []})


def _pid_and_rest(text: str) -> tuple[int, str] | None:
    head, _, rest = text.partition(" ")
    if not head.isdigit() or len(head) > 10:
        return None
    return int(head), rest


class GpuProcsBlockParser:
    """Feed lines of the loop's output; get a GpuProcsBlock at each `--- end`.

    Lines before a header, or after a block that has too many lines, are
    dropped; an unknown line inside a block is ignored. A block cut short by
    the stream's end never comes out.
    """

    def __init__(self) -> None:
        self._draft: _Draft | None = None

    def feed_line(self, line: str) -> GpuProcsBlock | None:
        if not isinstance(line, str):
            return None
        if line.startswith(BLOCK_BEGIN):
            status_text = line[len(BLOCK_BEGIN):].strip()
            status = int(status_text) if status_text.isdigit() and len(status_text) < 4 \
                else None
            self._draft = _Draft(status)
            return None
        draft = self._draft
        if draft is None:
            return None
        if line == BLOCK_END:
            self._draft = None
            return _finish(draft)
        draft.lines += 1
        if draft.lines > MAX_BLOCK_LINES:
            self._draft = None
            return None
        kind, _, rest = line.partition(" ")
        if kind == "app":
            draft.rows.append(rest)
            return None
        parsed = _pid_and_rest(rest)
        if parsed is None:
            return None
        pid, value = parsed
        if kind == "proc":
            uid_text, _, name = value.partition(" ")
            entry = draft.proc(pid)
            entry["uid"] = int(uid_text) if uid_text.isdigit() and len(uid_text) < 11 else None
            entry["user"] = name.strip() or None
        elif kind == "cgroup":
            cgroups = draft.proc(pid)["cgroups"]
            assert isinstance(cgroups, list)
            if len(cgroups) < MAX_CGROUP_LINES:
                cgroups.append(value)
        elif kind == "cmdline":
            draft.proc(pid)["cmdline"] = tuple(value.split(ARG_SEPARATOR)) if value else ()
        return None

    def feed(self, lines: Iterable[str]) -> list[GpuProcsBlock]:
        return [b for b in (self.feed_line(line) for line in lines) if b is not None]


def _finish(draft: _Draft) -> GpuProcsBlock:
    apps: list[ComputeApp] = []
    noise: list[str] = []
    for row in draft.rows:
        parsed = parse_compute_apps(row)
        if parsed:
            apps.extend(parsed)
        else:
            noise.append(row)
    details = {}
    for pid, entry in draft.procs.items():
        cmdline = entry.get("cmdline")
        details[pid] = ProcessDetail(
            pid=pid, uid=entry.get("uid"),  # type: ignore[arg-type]
            user=entry.get("user"),  # type: ignore[arg-type]
            cgroups=tuple(entry["cgroups"]),  # type: ignore[arg-type]
            cmdline=cmdline if isinstance(cmdline, tuple) else None)
    return GpuProcsBlock(draft.status, tuple(apps), details, "\n".join(noise[-20:]))
