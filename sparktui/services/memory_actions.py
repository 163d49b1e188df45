"""Drop caches and compact memory on a device: root's two levers for the GB10's free memory.

On a GB10, page cache counts against what CUDA can allocate, and a model load
that finds no high-order free blocks can livelock the box. Both levers need
root: the command writes the /proc/sys/vm file itself when it may (sparktui
connected as root), else through `sudo -n tee`, which never prompts. When sudo
wants a password (or is not there), the result says exactly which sudoers line
to add; sparktui never asks for a device password.

Each action is refused in read-only mode and goes into the audit log, whoever
asked (the user, or the load guard).
"""

from __future__ import annotations

import logging
import re
import shlex
from dataclasses import dataclass

from sparktui.services.audit import AuditLog, ReadOnlyError
from sparktui.services.link import DeviceLink
from sparktui.transport.base import ConnectionLost

log = logging.getLogger(__name__)

DROP_CACHES = "drop-caches"
COMPACT = "compact"
#: action -> (the /proc/sys/vm file, the value written, words for messages)
ACTIONS: dict[str, tuple[str, str, str]] = {
    DROP_CACHES: ("/proc/sys/vm/drop_caches", "3", "dropping caches"),
    COMPACT: ("/proc/sys/vm/compact_memory", "1", "compacting memory"),
}
#: the marker argument that names the script (the simulated Spark answers by it)
MARKERS = {DROP_CACHES: "sparktui-drop-caches", COMPACT: "sparktui-compact"}
USER_TAG = "sparktui-user "
TIMEOUT_S = 60.0  # sync on a box with gigabytes of dirty pages takes a while


def action_script(action: str) -> str:
    path, value, _ = ACTIONS[action]
    sync = "sync; " if action == DROP_CACHES else ""  # dirty pages cannot be dropped
    # under $SPARKTUI_ROOT: unset on a real device, the simulated Spark's own tree in the demo
    target = f'"${{SPARKTUI_ROOT-}}{path}"'
    return (f"{sync}if [ -w {target} ]; then echo {value} > {target}; "
            f"else echo {value} | sudo -n tee {target} > /dev/null; fi; s=$?; "
            f"[ $s = 0 ] || printf '{USER_TAG}%s\\n' \"${{USER:-$(id -un)}}\" >&2; exit $s")


def action_command(action: str) -> str:
    return f"sh -c {shlex.quote(action_script(action))} {MARKERS[action]}"


def sudoers_line(user: str) -> str:
    tees = ", ".join(f"/usr/bin/tee {path}" for path, _, _ in ACTIONS.values())
    return f"{user} ALL=(root) NOPASSWD: {tees}"


@dataclass(frozen=True)
class ActionResult:
    action: str
    ok: bool
    message: str
    sudoers: str | None = None  # the line to add when sudo wanted a password


_NEEDS_PASSWORD = re.compile(r"password is required|a terminal is required|no tty present"
                             r"|not in the sudoers|not allowed to execute|may not run sudo",
                             re.I)
_NO_SUDO = re.compile(r"sudo: (?:command )?not found|sudo: No such file", re.I)


def explain_failure(action: str, device: str, stderr: str, exit_status: int | None,
                    fallback_user: str) -> ActionResult:
    """Turn a failed run into one sentence, with the sudoers line when that is the fix."""
    _, _, words = ACTIONS[action]
    user = fallback_user
    lines = []
    for line in stderr.splitlines():
        if line.startswith(USER_TAG):
            user = line[len(USER_TAG):].strip() or user
        elif line.strip():
            lines.append(line.strip())
    detail = lines[-1] if lines else f"exit status {exit_status}"
    if _NEEDS_PASSWORD.search(stderr) or _NO_SUDO.search(stderr):
        line = sudoers_line(user)
        why = ("sudo is not installed" if _NO_SUDO.search(stderr)
               else "sudo -n wants a password (sparktui never asks for one)")
        return ActionResult(action, False,
                            f"{words} on {device} needs root and {why}. To allow it, run "
                            f"`sudo visudo -f /etc/sudoers.d/sparktui` on {device} and add: "
                            f"{line}", line)
    return ActionResult(action, False, f"{words} on {device} failed: {detail}")


class MemoryActions:
    """Drop caches / compact on one device, audited, refused in read-only mode."""

    def __init__(self, link: DeviceLink, *, read_only: bool, audit: AuditLog) -> None:
        self.link = link
        self.read_only = read_only
        self.audit = audit

    async def run(self, action: str, *, by: str = "user", reason: str | None = None
                  ) -> ActionResult:
        path, _, words = ACTIONS[action]
        device = self.link.name
        if self.read_only:
            raise ReadOnlyError(f"read-only mode: not {words} on {device}")
        try:
            result = await self.link.run(action_command(action), timeout=TIMEOUT_S)
        except ConnectionLost as exc:
            self.audit.record(device, action, path, f"failed: {exc}", by=by, reason=reason)
            return ActionResult(action, False, f"{words} on {device} failed: {exc}")
        if result.ok:
            outcome = ActionResult(action, True, f"{words} on {device}: done")
        else:
            outcome = explain_failure(action, device, result.stderr, result.exit_status,
                                      self.link.spec.user or "YOUR_USER")
        self.audit.record(device, action, path, "ok" if outcome.ok else
                          f"failed: {outcome.message}", by=by, reason=reason)
        return outcome

    async def reclaim(self, *, by: str = "user", reason: str | None = None
                      ) -> list[ActionResult]:
        """Drop caches, then compact (what ended one owner's wedges); stops at a failure."""
        results = [await self.run(DROP_CACHES, by=by, reason=reason)]
        if results[0].ok:
            results.append(await self.run(COMPACT, by=by, reason=reason))
        return results
