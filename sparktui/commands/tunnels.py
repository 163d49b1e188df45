"""`sparktui tunnels`: the tunnels saved in the config, without connecting to anything.

    sparktui tunnels [--json] [--config FILE]
"""

from __future__ import annotations

import argparse
import json
import sys


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="sparktui tunnels",
        description="List the tunnels saved in the config ([[tunnels]]); the TUI restores "
                    "them at start, and `sparktui forward` runs forwards from the shell.")
    p.add_argument("--json", action="store_true", help="print a JSON array")
    p.add_argument("--config", metavar="FILE",
                   help="config file (default: $SPARKTUI_CONFIG or the platform config dir)")
    return p


def _row(spec) -> dict[str, object]:
    from sparktui.services.tunnel_specs import local_url

    url = None
    if not spec.reverse and spec.local_port is not None:
        url = local_url(spec.bind, spec.local_port, spec.url_path)
    return {**spec.to_table(), "local_port": spec.local_port, "url": url,
            "autostart": spec.autostart}


def _text(rows: list[dict[str, object]]) -> str:
    from sparktui.core.sanitize import strip_control

    header = ("DEVICE", "NAME", "LOCAL", "DIRECTION", "REMOTE", "PRESET", "AT START")
    lines = [header]
    for row in rows:
        local = f"{row['bind']}:{row['local_port'] if row['local_port'] else 'auto'}"
        lines.append((str(row["device"]), str(row["name"]), local,
                      "<- device" if row["reverse"] else "-> device",
                      f"{row['remote_host']}:{row['remote_port']}", str(row.get("preset") or "-"),
                      "start" if row["autostart"] else "stay stopped"))
    lines = [tuple(strip_control(cell) for cell in line) for line in lines]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True))
                     .rstrip() for line in lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    from sparktui.services.config import resolve_config_path
    from sparktui.services.tunnel_specs import load_tunnels

    path = resolve_config_path(args.config)
    specs, problems = load_tunnels(path)
    for problem in problems:
        print(f"sparktui tunnels: {problem}", file=sys.stderr)
    rows = [_row(spec) for spec in specs]
    if args.json:
        print(json.dumps(rows, indent=2))
    elif rows:
        sys.stdout.write(_text(rows))
    else:
        print(f"no tunnels saved in {path} (add them in the Tunnels tab)")
    return 0
