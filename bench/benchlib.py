"""Shared pieces of the benchmarks: results files, tables, CPU accounting, the sshd rig, tmux.

Every script in bench/ is run from the repository root (`python bench/NAME.py`); this
module puts the repository root on sys.path so `tests.infra` (the real-sshd rig) imports.
Nothing here is timed by the test suite: benchmarks are run by hand and written up in
BENCHMARKS.md.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import queue
import resource
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

CLK_TCK = os.sysconf("SC_CLK_TCK")


# ----------------------------------------------------------------------------- output

def machine_info() -> dict[str, object]:
    """What the figures were measured on."""
    model = "unknown"
    with contextlib.suppress(OSError), open("/proc/cpuinfo", encoding="utf-8") as fh:
        for line in fh:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    versions: dict[str, str] = {}
    for name in ("sparktui", "textual", "asyncssh", "rich"):
        with contextlib.suppress(Exception):
            from importlib.metadata import version

            versions[name] = version(name)
    ssh_version = ""
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        ssh_version = subprocess.run(["ssh", "-V"], capture_output=True, text=True,
                                     timeout=5).stderr.strip()
    commit = ""
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        commit = subprocess.run(["git", "-C", str(REPO_ROOT), "rev-parse", "--short", "HEAD"],
                                capture_output=True, text=True, timeout=5).stdout.strip()
    return {
        "cpu_model": model,
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "kernel": platform.release(),
        "openssh": ssh_version,
        "packages": versions,
        "git_head": commit,
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def write_results(name: str, data: dict[str, object]) -> Path:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    payload = {"benchmark": name, "machine": machine_info(), **data}
    path.write_text(json.dumps(payload, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    return path


def print_table(headers: Sequence[str], rows: Sequence[Sequence[object]],
                title: str | None = None) -> None:
    cells = [[str(h) for h in headers], *[[_fmt(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    if title:
        print(f"\n{title}")
    for n, row in enumerate(cells):
        print("  ".join(c.rjust(w) if n and i else c.ljust(w)
                        for i, (c, w) in enumerate(zip(row, widths, strict=True))))
        if n == 0:
            print("  ".join("-" * w for w in widths))


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 10 else f"{value:.1f}"
    return str(value)


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile (what hyperfine-like tools report for small N)."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = max(1, min(len(ordered), round(pct / 100 * len(ordered) + 0.4999)))
    return ordered[rank - 1]


def summary(values: Sequence[float]) -> dict[str, float]:
    return {
        "n": len(values),
        "median": statistics.median(values),
        "p95": percentile(values, 95),
        "min": min(values),
        "max": max(values),
        "mean": statistics.fmean(values),
    }


# ----------------------------------------------------------------------- CPU accounting

def proc_stat(pid: int) -> tuple[int, float, float, str] | None:
    """(ppid, own CPU s, reaped children's CPU s, state) of `pid` from /proc, or None."""
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8", errors="replace") as fh:
            data = fh.read()
    except OSError:
        return None
    rest = data[data.rindex(")") + 2:].split()
    state, ppid = rest[0], int(rest[1])
    utime, stime, cutime, cstime = (int(x) for x in rest[11:15])
    return ppid, (utime + stime) / CLK_TCK, (cutime + cstime) / CLK_TCK, state


def proc_cpu_seconds(pid: int) -> float | None:
    """user+sys CPU seconds of one process (not its children)."""
    st = proc_stat(pid)
    return None if st is None else st[1]


def proc_rss_bytes(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/status", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def tree_cpu_seconds(root: int) -> float:
    """CPU seconds used so far by `root` and every descendant, living or reaped.

    Sums, over the live processes of the tree, own time plus the time of children
    they have already reaped (cutime/cstime, which in turn includes what those
    reaped in their turn). A process that exits is reaped by its parent inside the
    tree, so its time moves from "own" to the parent's "children" figure and is
    never lost, as long as nothing in the tree is orphaned (reparented to init).
    """
    table: dict[int, tuple[int, float, float]] = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            st = proc_stat(int(name))
            if st is not None:
                table[int(name)] = (st[0], st[1], st[2])
    children: dict[int, list[int]] = {}
    for pid, (ppid, _own, _reaped) in table.items():
        children.setdefault(ppid, []).append(pid)
    total = 0.0
    stack = [root]
    while stack:
        pid = stack.pop()
        if pid in table:
            total += table[pid][1] + table[pid][2]
        stack.extend(children.get(pid, ()))
    return total


class CpuMeter:
    """Cumulative CPU seconds of a process tree: a cgroup of its own when the kernel
    lets us make one (exact, counts processes that have exited), else /proc sums."""

    def __init__(self, pid: int | None, label: str) -> None:
        """pid None: an empty group; processes join it with join() (or write their own
        pid into `procs_file` before they exec, so children they start are counted)."""
        self.pid = pid
        self.cgroup: Path | None = None
        self.method = "proc-tree"
        self._reader: Callable[[], float] | None = None
        for make in (self._cgroup_v1, self._cgroup_v2):
            with contextlib.suppress(OSError):
                if make(label):
                    break

    def _join(self, base: Path, label: str) -> Path:
        """Make cgroup `label` under `base` and move the process into it."""
        group = base / label
        group.mkdir()
        if self.pid is not None:
            try:
                (group / "cgroup.procs").write_text(f"{self.pid}\n")
            except OSError:
                group.rmdir()
                raise
        self.cgroup = group
        return group

    @property
    def procs_file(self) -> Path | None:
        return None if self.cgroup is None else self.cgroup / "cgroup.procs"

    def join(self, pid: int) -> None:
        """Move a running process into this group (its later children follow it)."""
        if self.cgroup is not None:
            (self.cgroup / "cgroup.procs").write_text(f"{pid}\n")

    def _cgroup_v1(self, label: str) -> bool:
        base = Path("/sys/fs/cgroup/cpuacct")
        if not (base / "cpuacct.usage").exists():
            return False
        group = self._join(base, label)
        self.method = "cgroup-v1 cpuacct.usage"
        self._reader = lambda: int((group / "cpuacct.usage").read_text()) / 1e9
        return True

    def _cgroup_v2(self, label: str) -> bool:
        base = Path("/sys/fs/cgroup")
        if not (base / "cgroup.controllers").exists():
            return False
        group = self._join(base, label)

        def read() -> float:
            for line in (group / "cpu.stat").read_text().splitlines():
                key, _, value = line.partition(" ")
                if key == "usage_usec":
                    return int(value) / 1e6
            raise OSError("no usage_usec in cpu.stat")

        self.method = "cgroup-v2 cpu.stat usage_usec"
        self._reader = read
        return True

    def seconds(self) -> float:
        if self._reader is not None:
            return self._reader()
        return tree_cpu_seconds(self.pid) if self.pid is not None else 0.0

    def proc_tree_seconds(self) -> float:
        """The /proc estimate, kept alongside the cgroup figure as a cross-check."""
        return tree_cpu_seconds(self.pid) if self.pid is not None else 0.0

    def close(self) -> None:
        group, self.cgroup = self.cgroup, None
        if group is None:
            return
        parent_procs = group.parent / "cgroup.procs"
        for _ in range(50):
            try:
                group.rmdir()
                return
            except OSError:
                # something is still in it: move it out, then try again
                with contextlib.suppress(OSError):
                    for pid in (group / "cgroup.procs").read_text().split():
                        with contextlib.suppress(OSError):
                            parent_procs.write_text(f"{pid}\n")
                time.sleep(0.05)


def machine_busy_seconds() -> float:
    """CPU seconds every core of the machine has spent busy since boot (/proc/stat)."""
    with open("/proc/stat", encoding="utf-8") as fh:
        fields = [int(x) for x in fh.readline().split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    total = sum(fields[:8])  # guest time is already inside user
    return (total - idle) / CLK_TCK


def wait_quiet(max_busy_pct: float = 25.0, hold_s: float = 3.0, timeout: float = 30.0,
               quiet: bool = False) -> float:
    """Wait (up to `timeout`) until the whole machine has been under `max_busy_pct` % of
    one core busy for `hold_s` s in a row, so other work (a test suite running alongside)
    does not skew a wall-clock figure. Returns the busy % of the last second seen."""
    deadline = time.monotonic() + timeout
    calm_since: float | None = None
    told = False
    busy_pct = 0.0
    while True:
        b0, t0 = machine_busy_seconds(), time.monotonic()
        time.sleep(1.0)
        busy_pct = 100 * (machine_busy_seconds() - b0) / (time.monotonic() - t0)
        now = time.monotonic()
        if busy_pct <= max_busy_pct:
            calm_since = calm_since or now
            if now - calm_since >= hold_s:
                return busy_pct
        else:
            calm_since = None
            if not told and not quiet:
                print(f"  (waiting for the machine to quieten: {busy_pct:.0f} % busy)",
                      flush=True)
                told = True
        if now > deadline:
            if not quiet:
                print(f"  (still {busy_pct:.0f} % busy after {timeout:.0f} s; going ahead)",
                      flush=True)
            return busy_pct


# ---------------------------------------------------------------------------- sshd rig

@dataclass
class Rig:
    """N real OpenSSH sshds on loopback (stand-in nvidia-smi, scenario gb10), a private
    client HOME whose ~/.ssh/config names them spark-1..spark-N, and a CPU meter per sshd."""

    servers: list = field(default_factory=list)
    client: object = None
    meters: list[CpuMeter] = field(default_factory=list)
    aliases: list[str] = field(default_factory=list)

    @property
    def home(self) -> str:
        return self.client.home  # type: ignore[attr-defined]

    def env(self, **extra: str) -> dict[str, str]:
        """Environment for a client process: this HOME, no agent, the checkout importable."""
        env = dict(os.environ, HOME=self.home, PYTHONPATH=str(REPO_ROOT))
        env.pop("SSH_AUTH_SOCK", None)
        env.update(extra)
        return env

    def openssh_args(self) -> list[str]:
        return self.client.openssh_args()  # type: ignore[attr-defined]

    def device_seconds(self) -> float:
        return sum(m.seconds() for m in self.meters)

    def device_proc_tree_seconds(self) -> float:
        return sum(m.proc_tree_seconds() for m in self.meters)

    def shell_starts(self) -> int:
        """Login shells started on all devices so far (each read the heavy .bashrc)."""
        total = 0
        for server in self.servers:
            with contextlib.suppress(OSError):
                total += len(Path(server.remote_home, SHELL_STARTS).read_text().splitlines())
        return total

    def exec_sessions(self) -> int:
        """`Starting session: command` lines in every sshd's log (LogLevel VERBOSE)."""
        return sum(s.log_text().count("Starting session: command") for s in self.servers)

    @property
    def meter_method(self) -> str:
        return self.meters[0].method if self.meters else "none"


SHELL_STARTS = "shell-starts"  # in each device's HOME: one line per login shell started


def bashrc_loop_count(cpu_s: float) -> int:
    """How many iterations of a bash `while` loop cost `cpu_s` of CPU on this machine
    (CPU time, not wall time: the same on a busy machine)."""
    trial = 20_000
    script = f"i=0; while [ $i -lt {trial} ]; do i=$((i+1)); done"
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(["bash", "--norc", "-c", script], check=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    spent = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return max(1, int(trial * cpu_s / max(spent, 1e-3)))


def heavy_bashrc(cpu_s: float) -> str:
    """A ~/.bashrc as costly as a real one (pyenv/conda/nvm init), that also counts shells."""
    count = bashrc_loop_count(cpu_s)
    return (f'printf "%s\\n" "$$" >> "$HOME/{SHELL_STARTS}"\n'
            f"# stands for `eval \"$(pyenv init -)\"`: about {cpu_s:.2f} s of CPU\n"
            f"__i=0; while [ $__i -lt {count} ]; do __i=$((__i+1)); done; unset __i\n")


@contextlib.contextmanager
def sshd_rig(count: int, scenario: str = "gb10", *, bashrc_cpu_s: float = 0.0,
             aliases_per_server: int = 1) -> Iterator[Rig]:
    """Start `count` sshds and a client HOME; stop and remove all of it on the way out.

    bashrc_cpu_s > 0: each device user's ~/.bashrc burns that much CPU and appends a
    line to ~/shell-starts (Rig.shell_starts), as a real one with pyenv init does.
    aliases_per_server: that many Host aliases per sshd (spark-1..spark-count*k), for
    a fleet larger than the machine holds sshds: every alias is its own connection.
    """
    from tests.infra import ClientSetup, SshdServer, sshd_available

    if not sshd_available():
        raise SystemExit("bench: /usr/sbin/sshd and ssh-keygen are needed for this benchmark")
    rig = Rig()
    tag = f"sparktui-bench-{os.getpid()}-{secrets.token_hex(3)}"
    bashrc = heavy_bashrc(bashrc_cpu_s) if bashrc_cpu_s > 0 else None
    try:
        rig.client = ClientSetup()
        for n in range(1, count + 1):
            server = SshdServer()
            rig.servers.append(server)
            if bashrc is not None and server.remote_home:
                Path(server.remote_home, ".bashrc").write_text(bashrc)
            server.authorize(rig.client.pubkey_line)  # type: ignore[attr-defined]
            server.set_fake_gpu(scenario)
            server.start()
            rig.meters.append(CpuMeter(server.pid, f"{tag}-{n}"))
        for k in range(count * aliases_per_server):
            alias = f"spark-{k + 1}"
            rig.client.add_server(alias, rig.servers[k % count])  # type: ignore[attr-defined]
            rig.aliases.append(alias)
        yield rig
    finally:
        for server in reversed(rig.servers):
            with contextlib.suppress(Exception):
                server.close()
        for meter in rig.meters:
            meter.close()
        if rig.client is not None:
            with contextlib.suppress(Exception):
                rig.client.close()  # type: ignore[attr-defined]


# ------------------------------------------------------------------------------- tmux

class Tmux:
    """A private tmux server (its own -L socket, no user config); killed on close()."""

    def __init__(self, prefix: str = "bench") -> None:
        if shutil.which("tmux") is None:
            raise SystemExit("bench: tmux is needed for this benchmark")
        self.socket = f"{prefix}-{os.getpid()}-{secrets.token_hex(3)}"
        # an idle session keeps the server up, so later sessions start without its cost
        self.cmd("new-session", "-d", "-s", "idle", "-x", "120", "-y", "40", "sleep 100000")
        # a pane whose program exited stays, so its exit is seen (pane_dead) and its last
        # screen can still be captured
        self.cmd("set-option", "-g", "remain-on-exit", "on")

    def cmd(self, *args: str, check: bool = True) -> str:
        result = subprocess.run(["tmux", "-L", self.socket, "-f", "/dev/null", *args],
                                capture_output=True, text=True, timeout=15, check=False)
        if check and result.returncode != 0:
            raise RuntimeError(f"tmux {' '.join(args)} failed: {result.stderr.strip()}")
        return result.stdout

    def new_session(self, name: str, command: str, env: dict[str, str],
                    width: int = 120, height: int = 40) -> None:
        env_args = [a for k, v in env.items() for a in ("-e", f"{k}={v}")]
        self.cmd("new-session", "-d", "-s", name, "-x", str(width), "-y", str(height),
                 *env_args, command)

    def capture(self, target: str) -> str:
        return self.cmd("capture-pane", "-p", "-t", target, check=False)

    def pane_pid(self, target: str) -> int:
        return int(self.cmd("display-message", "-p", "-t", target, "#{pane_pid}").strip())

    def pane_dead(self, target: str) -> bool:
        out = self.cmd("display-message", "-p", "-t", target, "#{pane_dead}", check=False)
        return out.strip() in ("1", "")

    def send(self, target: str, *keys: str, literal: bool = False) -> None:
        self.cmd("send-keys", "-t", target, *(("-l",) if literal else ()), *keys)

    def pipe_to(self, target: str, path: Path) -> None:
        self.cmd("pipe-pane", "-o", "-t", target, f"cat >> {shell_quote(str(path))}")

    def kill_session(self, target: str) -> None:
        self.cmd("kill-session", "-t", target, check=False)

    def close(self, quit_key: str = "q") -> None:
        """Ask every app still running to quit (`q`: a hang-up would leave the demo's
        temp dir behind), give it 10 s, then kill the server and its socket file."""
        path = self.cmd("display-message", "-p", "-t", "idle", "#{socket_path}",
                        check=False).strip()
        live = [name for name in self.cmd("list-sessions", "-F", "#{session_name}",
                                          check=False).split()
                if name != "idle" and not self.pane_dead(name)]
        for name in live:
            self.cmd("send-keys", "-t", name, "-l", quit_key, check=False)
        deadline = time.monotonic() + 10
        while live and time.monotonic() < deadline:
            live = [name for name in live if not self.pane_dead(name)]
            time.sleep(0.1)
        self.cmd("kill-server", check=False)
        if path and os.path.basename(path) == self.socket:  # tmux can leave it behind
            with contextlib.suppress(OSError):
                os.unlink(path)


def shell_quote(text: str) -> str:
    import shlex

    return shlex.quote(text)


def wait_for(predicate: Callable[[], object], timeout: float, poll: float = 0.05,
             what: str = "a condition") -> object:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(poll)


def sparktui_command() -> list[str]:
    installed = shutil.which("sparktui")
    return [installed] if installed else [sys.executable, "-m", "sparktui"]


def terminate(proc: subprocess.Popen, timeout: float = 10.0) -> None:
    """End a child we started: SIGTERM, then SIGKILL."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=timeout)


def read_lines(proc: subprocess.Popen) -> tuple[queue.Queue[str | None], list[str]]:
    """Read a text-mode child's stdout lines into a queue (None at EOF) and its stderr
    into a list, each on a thread, so neither pipe fills up and blocks the child."""
    lines: queue.Queue[str | None] = queue.Queue()
    errors: list[str] = []

    def pump_out() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line)
        lines.put(None)

    def pump_err() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            errors.append(line.rstrip())
            del errors[:-200]

    for target in (pump_out, pump_err):
        threading.Thread(target=target, daemon=True).start()
    return lines, errors
