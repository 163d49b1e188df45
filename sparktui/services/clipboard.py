"""Whether a copy sent through the terminal (OSC 52) can reach the user's clipboard.

sparktui copies the way every terminal app over SSH must: an OSC 52 sequence
the terminal turns into a clipboard write. Nothing answers it, so a copy can
only be claimed where it can arrive: tmux drops it unless `set-clipboard` is
on (or external), and a run with no terminal (headless) has nowhere to send it.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping


def tmux_passes_copies(environ: Mapping[str, str] | None = None) -> bool:
    """False inside a tmux whose set-clipboard is off (blocking: call it from a thread)."""
    environ = os.environ if environ is None else environ
    if not environ.get("TMUX"):
        return True  # straight to the terminal: nothing in between drops it
    try:
        value = subprocess.run(["tmux", "show-options", "-gv", "set-clipboard"],
                               capture_output=True, text=True, timeout=5,
                               env=dict(environ)).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return False  # tmux did not answer: do not claim a copy arrived
    return value in ("on", "external")
