"""The UI core's shape: panes read the app through typed state, never by probing it.

The static check walks every module of sparktui/ui: no getattr/hasattr whose
object is an app (`app`, `self.app`, `node.app`, ...). Typed attributes
(`self.session.read_only`), `data_bind` (`compact`, `focused_device`) and the
GrammarApp methods (`key_for`) are the ways in.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _names_an_app(node: ast.expr) -> bool:
    return (isinstance(node, ast.Name) and node.id == "app") or (
        isinstance(node, ast.Attribute) and node.attr == "app")


def test_the_ui_never_probes_the_app_with_getattr_or_hasattr() -> None:
    probes = []
    for path in sorted((ROOT / "sparktui" / "ui").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) \
                    and node.func.id in ("getattr", "hasattr") and node.args \
                    and _names_an_app(node.args[0]):
                probes.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not probes, f"probes of the app: {probes}"
