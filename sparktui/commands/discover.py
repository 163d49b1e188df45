"""`sparktui discover`: the SSH hosts mDNS finds on this network, Sparks marked.

    sparktui discover [--json] [--timeout S]

Browses `_ssh._tcp.local.` for S seconds (default 3), merges the answers of
one box (by address) and drops 169.254 link-local addresses. With multicast
blocked it says "multicast unavailable: <reason>" at once and exits 1; when
nothing answers it says so and exits 0 (an empty network is not an error).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

EXIT_PROBLEM = 1


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not 0 < value <= 120:
        raise argparse.ArgumentTypeError(f"{text!r}: must be more than 0 and at most 120 s")
    return value


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="sparktui discover",
        description="List SSH hosts announced over mDNS (_ssh._tcp), Sparks marked.")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--timeout", type=_seconds, default=3.0, metavar="S",
                   help="seconds to listen (default 3)")
    p.add_argument("--interface", action="append", metavar="ADDRESS",
                   help="listen on this local address only (repeatable; default: all)")
    return p


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    from sparktui.services.discovery import discover

    result = asyncio.run(discover(args.timeout, interfaces=args.interface))
    if args.json:
        print(json.dumps({"hosts": [h.as_dict() for h in result.hosts],
                          "problem": result.problem,
                          "ignored_link_local": result.ignored_link_local,
                          "elapsed_s": round(result.elapsed, 3)}, indent=2))
    else:
        from sparktui.core.sanitize import strip_control as safe_text

        if result.hosts:
            width = max(len(safe_text(h.hostname)) for h in result.hosts)
            for host in result.hosts:
                mark = "spark" if host.is_spark else "     "
                port = "" if host.port == 22 else f" port {host.port}"
                aliases = f"  (also {', '.join(map(safe_text, host.aliases))})" \
                    if host.aliases else ""
                print(f"{mark}  {safe_text(host.hostname):<{width}}  "
                      f"{', '.join(host.addresses)}{port}{aliases}")
        print(result.summary(), file=sys.stderr if result.hosts else sys.stdout)
    return EXIT_PROBLEM if result.problem else 0
