"""`sparktui devices`: every device that opens by name, and where it comes from.

    sparktui devices [--json] [--config FILE]

Sources: "config" (the [[devices]] of sparktui's config), "ssh-config"
(concrete Host entries of ~/.ssh/config, Includes followed) and "nvidia-sync"
(NVIDIA Sync's own ssh_config, $NV_SYNC_SSH_CONFIG overriding where it is).
Any NAME listed opens with `sparktui NAME`: Sync's aliases are connected with
Sync's ssh_config added to the SSH client's configuration.
"""

from __future__ import annotations

import argparse
import json

from sparktui.core.sanitize import strip_control


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="sparktui devices",
        description="List configured devices and the hosts of ~/.ssh/config and NVIDIA Sync.")
    p.add_argument("--json", action="store_true", help="print a JSON array")
    p.add_argument("--config", metavar="FILE",
                   help="config file (default: $SPARKTUI_CONFIG or the platform config dir)")
    return p


def collect(config) -> tuple[list[dict[str, object]], list[str]]:
    """Rows (one per name, the config's first) and the problems met reading the files."""
    from sparktui.services.sshconfig import import_hosts

    rows: list[dict[str, object]] = []
    for spec in config.devices:
        rows.append({"name": spec.name, "source": "config", "destination": spec.destination,
                     "host": spec.host, "user": spec.user, "port": spec.port,
                     "identity_file": spec.identity_file, "proxy_jump": spec.proxy_jump,
                     "tags": list(spec.tags)})
    imported = import_hosts()
    names = {row["name"] for row in rows}
    for host in imported.hosts:
        if host.alias in names:
            continue  # the config's device of that name is what `sparktui NAME` opens
        names.add(host.alias)
        row = host.as_dict()
        row["destination"] = host.destination
        rows.append(row)
    return rows, [*config.problems, *imported.problems]


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    import sys

    from sparktui.services.config import load_config, resolve_config_path

    config = load_config(resolve_config_path(args.config))
    rows, problems = collect(config)
    for problem in problems:
        print(f"sparktui devices: {problem}", file=sys.stderr)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    if not rows:
        print("no devices: add [[devices]] to the config, a Host to ~/.ssh/config, or run "
              "`sparktui discover` to find Sparks on this network")
        return 0
    width = max(len(strip_control(str(r["name"]))) for r in rows)
    for row in rows:
        print(f"{strip_control(str(row['name'])):<{width}}  {row['source']:<11}  "
              f"{strip_control(str(row['destination']))}")
    return 0
