"""`sparktui sim`: run a simulated Spark in the foreground.

The top-level CLI calls `main(argv)` lazily, so asyncssh is only imported
when the subcommand is used.
"""

from __future__ import annotations

import argparse
import asyncio
import shlex
import signal
import sys
import tempfile

from sparktui.sim.device.gpu_model import KINDS


def _listen(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not HOST:PORT (e.g. 127.0.0.1:2222)")
    return host.strip("[]"), int(port)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="sparktui sim",
        description="Run a simulated DGX Spark SSH server (a toy: loopback only by default).")
    p.add_argument("--listen", type=_listen, default=("127.0.0.1", 2222), metavar="HOST:PORT",
                   help="address to listen on (default 127.0.0.1:2222; port 0 picks one)")
    p.add_argument("--gpus", type=int, default=None, help="number of GPUs (default 1, or 8 "
                   "for --kind discrete)")
    p.add_argument("--kind", choices=KINDS, default="gb10", help="GPU kind (default gb10)")
    p.add_argument("--seed", type=int, default=None, help="seed for repeatable values")
    p.add_argument("--host-key", metavar="FILE",
                   help="host private key; created there if missing (default: throwaway)")
    p.add_argument("--authorized-keys", metavar="FILE",
                   help="accept these public keys (default: a throwaway client key)")
    p.add_argument("--write-client-files", metavar="DIR",
                   help="write the client key and known_hosts here (default: a temp dir)")
    p.add_argument("--allow-remote", action="store_true",
                   help="allow a non-loopback listen address")
    return p


async def _serve(args: argparse.Namespace, out) -> int:
    from sparktui.sim.demo import start_extras
    from sparktui.sim.ssh.server import start_sim

    host, port = args.listen
    gpus = args.gpus if args.gpus is not None else (8 if args.kind == "discrete" else 1)
    try:
        sim = await start_sim(host, port, gpus=gpus, kind=args.kind, seed=args.seed,
                              host_key_path=args.host_key,
                              authorized_keys_path=args.authorized_keys)
    except OSError as exc:
        print(f"sparktui sim: cannot listen on {host}:{port}: {exc}", file=sys.stderr)
        return 1
    tmp = None
    extras = None
    try:
        client_dir = args.write_client_files
        if client_dir is None:
            tmp = tempfile.TemporaryDirectory(prefix="sparktui-sim-")
            client_dir = tmp.name
        identity, known_hosts = sim.write_client_files(client_dir)
        # the Dashboard (11000), a model server (8000) and Docker, as on a Spark
        extras = await start_extras(sim, client_dir)
        shown = f"[{sim.host}]" if ":" in sim.host else sim.host
        print(f"simulated DGX Spark ({gpus} x {args.kind}) listening on {shown}:{sim.port}",
              file=out)
        print(f"host key fingerprint: {sim.host_key_fingerprint}", file=out)
        print(f"known_hosts: {known_hosts}", file=out)
        ssh = ["ssh", "-o", f"UserKnownHostsFile={known_hosts}", "-p", str(sim.port)]
        if identity is not None:
            print(f"client key: {identity}", file=out)
            ssh[1:1] = ["-i", identity]
        print("try: " + " ".join(shlex.quote(a) for a in [*ssh, sim.host, "nvidia-smi"]),
              file=out)
        print("Ctrl+C stops it.", file=out, flush=True)

        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        try:
            await stop.wait()
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)
    finally:
        if extras is not None:
            await extras.close()
        await sim.close()
        if tmp is not None:
            tmp.cleanup()
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["sim"]:  # accept being handed the subcommand name too
        argv = argv[1:]
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # --help or a usage error: argparse has printed why
        return int(exc.code or 0)
    if args.gpus is not None and args.gpus < 1:
        print("sparktui sim: --gpus must be at least 1", file=sys.stderr)
        return 2
    from sparktui.core.device import is_loopback

    host = args.listen[0]
    if not args.allow_remote and not is_loopback(host):
        print(f"sparktui sim: refusing to listen on {host}: the simulator accepts anyone "
              "holding its throwaway key and forwards ports; use --allow-remote to insist",
              file=sys.stderr)
        return 2
    try:
        return asyncio.run(_serve(args, sys.stdout))
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    raise SystemExit(main())
