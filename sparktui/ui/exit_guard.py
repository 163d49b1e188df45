"""The process ends, however its terminal went away.

On a headless box reached over SSH, a dropped session must not leave a
sparktui behind. Three things make that so:

- the terminal is watched from a thread of its own: a hang-up (POLLHUP), an
  error or a closed descriptor on stdin or stdout starts an orderly exit (SIGHUP
  does too, in the app), even if no signal ever arrives;
- once an exit has begun, a watchdog thread gives the orderly shutdown (close
  the links, stop the demo, restore the terminal) `deadline` seconds, then ends
  the process with os._exit. Textual can block for good in its shutdown when
  its writer thread is gone (textual#6692: `WriterThread.stop` puts into a
  queue nobody reads); we do not patch Textual's private classes to avoid it,
  we only refuse to wait on it forever;
- the links are closed before the terminal is touched (SparkApp.on_unmount),
  so what the watchdog cuts short is only terminal output nobody can see.

Nothing here imports Textual: the app hands in the callables.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import sys
import threading
import time
from collections.abc import Callable

log = logging.getLogger(__name__)

#: how long an orderly exit may take before the process is ended anyway
EXIT_DEADLINE_S = 6.0
#: exit status when the terminal went away (128 + SIGHUP, as a shell would report)
EXIT_TERMINAL_LOST = 129


class ExitGuard:
    """Arms a watchdog once an exit begins; watches the terminal for a hang-up."""

    def __init__(self, deadline: float = EXIT_DEADLINE_S, *,
                 end_process: Callable[[int], None] = os._exit) -> None:
        self.deadline = deadline
        self._end_process = end_process
        self._armed = threading.Event()
        self._lock = threading.Lock()
        self.reason: str | None = None

    @property
    def armed(self) -> bool:
        return self._armed.is_set()

    def arm(self, reason: str, code: int = 0) -> None:
        """Start the countdown (once): the process ends after `deadline` seconds at most."""
        with self._lock:
            if self._armed.is_set():
                return
            self._armed.set()
            self.reason = reason
        log.info("exit begun (%s): the process ends within %.0f s", reason, self.deadline)
        threading.Thread(target=self._countdown, args=(reason, code), name="exit-watchdog",
                         daemon=True).start()

    def _countdown(self, reason: str, code: int) -> None:
        time.sleep(self.deadline)
        # still here: the orderly shutdown is stuck (most likely on terminal writes)
        log.warning("shutdown after %s did not finish in %.0f s; ending the process",
                    reason, self.deadline)
        with contextlib.suppress(Exception):
            logging.shutdown()  # the log file gets its last lines
        self._end_process(code)

    def watch_terminal(self, on_lost: Callable[[], None],
                       fds: tuple[int, ...] | None = None) -> None:
        """Call `on_lost()` (from a thread) when the terminal hangs up or errors."""
        if fds is None:
            fds = tuple(f.fileno() for f in (sys.__stdin__, sys.__stdout__)
                        if f is not None and _isatty(f))
        if not fds:
            return
        threading.Thread(target=self._watch, args=(fds, on_lost), name="terminal-watch",
                         daemon=True).start()

    def _watch(self, fds: tuple[int, ...], on_lost: Callable[[], None]) -> None:
        poller = select.poll()
        for fd in fds:
            poller.register(fd, 0)  # only POLLHUP, POLLERR and POLLNVAL: always reported
        bad = select.POLLHUP | select.POLLERR | select.POLLNVAL
        while not self._armed.is_set():
            try:
                events = poller.poll(1000)
            except OSError:
                events = [(fds[0], select.POLLERR)]
            if any(mask & bad for _fd, mask in events):
                log.warning("the terminal went away; exiting")
                self.arm("the terminal went away", EXIT_TERMINAL_LOST)
                with contextlib.suppress(Exception):
                    on_lost()
                return


def _isatty(stream) -> bool:
    try:
        return stream.isatty()
    except (ValueError, OSError):
        return False
