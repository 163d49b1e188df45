"""The services and the CLI's headless commands load no Textual.

The layers are import-linter contracts (pyproject.toml, run by .ci/run); this
checks what they cannot see: what a process really has in sys.modules after
importing every services module and every command module, and after a
headless command has run. `sparktui status` on a box over SSH must not pay for
the TUI's imports.
"""

from __future__ import annotations

import json
import os
import pkgutil
import subprocess
import sys
from pathlib import Path

import sparktui.commands
import sparktui.services

ROOT = Path(__file__).resolve().parent.parent


def _modules(package) -> list[str]:
    return sorted(f"{package.__name__}.{info.name}"
                  for info in pkgutil.iter_modules(package.__path__))


PROBE = """
import importlib, json, sys
for name in sys.argv[1:]:
    importlib.import_module(name)
print(json.dumps(sorted(m for m in sys.modules if m == "textual" or m.startswith("textual."))))
"""


def _textual_after(*argv: str) -> list[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", *argv], env=env, capture_output=True,
                         text=True, timeout=120, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def test_importing_every_service_loads_no_textual() -> None:
    services = _modules(sparktui.services)
    assert "sparktui.services.session" in services and "sparktui.services.store" in services
    assert _textual_after(PROBE, *services) == []


def test_importing_every_command_loads_no_textual() -> None:
    # the TUI is imported by `run_tui` when it runs, never by a command module's import
    assert _textual_after(PROBE, "sparktui.cli", *_modules(sparktui.commands)) == []


HEADLESS = """
import contextlib, io, json, sys
from sparktui.cli import main
with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
    try:
        main(["devices", "--config", sys.argv[1]])
    except SystemExit:
        pass
print(json.dumps(sorted(m for m in sys.modules if m == "textual" or m.startswith("textual."))))
"""


def test_a_headless_command_runs_without_textual(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('[[devices]]\nname = "spark"\nhost = "spark.lan"\n')
    assert _textual_after(HEADLESS, str(config)) == []
