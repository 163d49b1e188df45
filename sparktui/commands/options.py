"""Command-line options every device-facing command shares, defined once."""

from __future__ import annotations

import argparse


def add_connection_options(parser: argparse.ArgumentParser) -> None:
    """--config and --accept-new-host-keys, with the same meaning everywhere."""
    parser.add_argument("--config", metavar="FILE",
                        help="config file (default: $SPARKTUI_CONFIG or the platform config dir)")
    parser.add_argument("--accept-new-host-keys", action="store_true",
                        help="trust and record host keys of hosts never seen before "
                             "(a changed key is still refused)")
