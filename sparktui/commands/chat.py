"""`sparktui chat`: one answer from a model, streamed to stdout.

    sparktui chat [--endpoint URL | --device DEVICE | --demo] [--model M] [--system TEXT]
                  [--temperature T] [--max-tokens N] [--json] [--timeout S] [PROMPT]

The prompt is PROMPT, or stdin when absent. With --device (or --demo) the
device's endpoints are found as the Chat tab finds them (through the SSH
connection; nothing is opened on the device) and, without --model, the first
endpoint's first model is used; both are named on stderr. --endpoint URL
with --device is a URL as seen from the device. --json prints one JSON
object (the text and its figures: ttft_s, tokens, tokens_per_s, energy_j
when known) instead of streaming the text.

An API key comes from $SPARKTUI_API_KEY (for the one endpoint of this run),
the endpoint's own $SPARKTUI_API_KEY_<ID>, or the keyring.

`open_target` is shared with `sparktui bench`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import os
import sys
from dataclasses import dataclass, field
from typing import Any

from sparktui.commands.options import add_connection_options

EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
CONNECT_TIMEOUT_S = 20.0
TELEMETRY_WAIT_S = 3.0
#: the whole answer, first byte to last: a server that trickles keep-alives ends here
DEFAULT_TIMEOUT_S = 600.0  # for a first power reading, so the energy has a starting point


class TargetError(Exception):
    """The endpoint or model could not be settled; the message says why."""


def add_target_arguments(p: argparse.ArgumentParser) -> None:
    where = p.add_mutually_exclusive_group()
    where.add_argument("--device", metavar="DEVICE",
                       help="find the endpoints on this device (a config name, ssh "
                            "destination or Host alias)")
    where.add_argument("--demo", action="store_true",
                       help="use the simulated Spark and its model server")
    p.add_argument("--endpoint", metavar="URL",
                   help="a base URL (with or without /v1); with --device, as seen from the "
                        "device")
    p.add_argument("--port", type=int, action="append", default=[], metavar="P",
                   help="with --device: also probe this port on the device (repeatable)")
    p.add_argument("--model", metavar="M", help="model id (default: the endpoint's first)")
    add_connection_options(p)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="sparktui chat",
        description="Stream one answer from an OpenAI-compatible endpoint (on a device, "
                    "reached over SSH, or direct) and report its speed.")
    p.add_argument("prompt", nargs="?", metavar="PROMPT", help="the prompt (default: stdin)")
    add_target_arguments(p)
    p.add_argument("--system", metavar="TEXT", help="a system prompt")
    p.add_argument("--temperature", type=float, metavar="T",
                   help="sampling temperature (default: the server's)")
    p.add_argument("--max-tokens", type=int, metavar="N",
                   help="stop the answer after N tokens (default: the server's limit)")
    p.add_argument("--json", action="store_true",
                   help="print one JSON object: the text and its figures")
    p.add_argument("--timeout", type=_seconds, default=DEFAULT_TIMEOUT_S, metavar="S",
                   help="give up when the whole answer has not come in S seconds "
                        f"(default {DEFAULT_TIMEOUT_S:g})")
    return p


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not 0 < value <= 86400:
        raise argparse.ArgumentTypeError(f"{text!r}: must be between 0 and 86400 seconds")
    return value


@dataclass
class Target:
    """Where the requests go, and everything opened to get there (closed by `close`)."""

    spec: Any  # EndpointSpec
    model: str
    connector: Any  # EndpointConnector
    chat: Any  # ChatService
    telemetry: Any = None  # TelemetryService of the device, when there is one
    opened: list[Any] = field(default_factory=list)  # things with `async close()`

    async def close(self) -> None:
        for thing in reversed(self.opened):
            with contextlib.suppress(Exception):  # closing everything matters more
                await thing.close()


async def _connect(args: argparse.Namespace, settings, opened: list[Any]):
    from sparktui.core.device import DestinationError, LinkState
    from sparktui.services.config import load_config, resolve_config_path
    from sparktui.services.devices import make_link, resolve_device
    from sparktui.transport.ssh_types import SSHOptions

    if args.demo:
        from sparktui.services.demo import start_demo

        demo = await start_demo()
        opened.append(demo)
        link = make_link(demo.spec, settings, ssh_options=demo.ssh_options)
    else:
        config = load_config(resolve_config_path(args.config))
        try:
            spec = resolve_device(args.device, config)
        except DestinationError as exc:
            raise TargetError(str(exc)) from exc
        options = SSHOptions(keepalive_interval=settings.keepalive_interval,
                             keepalive_count_max=settings.keepalive_count_max,
                             connect_timeout=CONNECT_TIMEOUT_S,
                             accept_new_host_keys=args.accept_new_host_keys)
        link = make_link(spec, settings, ssh_options=options)
    opened.append(link)
    link.start()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + CONNECT_TIMEOUT_S
    while link.status.state is not LinkState.CONNECTED:
        if link.status.state is LinkState.FAILED or (
                loop.time() > deadline and link.status.failure is not None):
            raise TargetError(f"{link.name}: {link.status.describe()}")
        if loop.time() > deadline:
            raise TargetError(f"{link.name}: not connected after {CONNECT_TIMEOUT_S:.0f} s")
        await asyncio.sleep(0.05)
    return link


async def open_target(args: argparse.Namespace, *, say=None) -> Target:
    """Connect, find the endpoint and the model, start telemetry on the device."""
    from sparktui.core.openai_chat import BadURL
    from sparktui.services.chat import ChatService
    from sparktui.services.config import Settings
    from sparktui.services.endpoints import DEFAULT_PORTS, EndpointConnector, manual_spec
    from sparktui.services.secrets import SecretStore
    from sparktui.services.telemetry import TelemetryService

    say = say or _say
    settings = dataclasses.replace(Settings(), refresh_interval=0.25)
    opened: list[Any] = []
    try:
        link = None
        if args.device or args.demo:
            link = await _connect(args, settings, opened)
        connector = EndpointConnector(lambda name: link if link and name == link.name else None,
                                      SecretStore())
        opened.append(connector)
        if args.endpoint:
            try:
                spec = manual_spec(args.endpoint, device=link.name if link else None)
            except BadURL as exc:
                raise TargetError(f"--endpoint: {exc}") from exc
            if spec.note:
                say(f"using {spec.url} ({spec.note})")
            key = os.environ.get("SPARKTUI_API_KEY")
            if key:
                connector.set_session_key(spec.id, key)
            probe_s = min(15.0, vars(args).get("timeout") or 15.0)
            endpoint = await connector.probe(spec, timeout=probe_s)
            models = endpoint.models
            if not args.model and endpoint.error:
                raise TargetError(f"{spec.describe()}: {endpoint.error}")
        elif link is not None:
            ports = tuple(dict.fromkeys((*args.port, *DEFAULT_PORTS)))
            found = await connector.discover_device(link, ports=ports)
            if not found.endpoints:
                notes = "; ".join(found.notes)
                raise TargetError(f"no model endpoint answered on {link.name} (ports "
                                  + ", ".join(map(str, ports))
                                  + (f"; {notes}" if notes else "") + "); --port P adds one")
            endpoint = next((e for e in found.endpoints if e.models), found.endpoints[0])
            spec, models = endpoint.spec, endpoint.models
        else:
            raise TargetError("give --endpoint URL, --device DEVICE or --demo")
        model = args.model or (models[0] if models else None)
        if model is None:
            raise TargetError(f"{spec.describe()} lists no models; give --model")
        if not args.model:
            say(f"endpoint {spec.describe()}, model {model}")
        telemetry = None
        if link is not None:
            telemetry = TelemetryService(link, settings)
            telemetry.start()
            opened.append(telemetry)
            await _first_power(telemetry)
        total = getattr(args, "timeout", None)  # `sparktui bench` shares open_target
        return Target(spec, model, connector, ChatService(connector, total_timeout=total),
                      telemetry, opened)
    except BaseException:
        for thing in reversed(opened):
            with contextlib.suppress(Exception):
                await thing.close()
        raise


async def _first_power(telemetry) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + TELEMETRY_WAIT_S
    while loop.time() < deadline:
        latest = telemetry.latest
        if latest.gpus and any(g.power_w is not None for g in latest.gpus):
            return
        if latest.gpu_problem:
            return  # no GPU figures on this device: no energy, no point waiting
        await asyncio.sleep(0.05)


def _say(message: str) -> None:
    from sparktui.core.sanitize import strip_control

    print(f"sparktui: {strip_control(message)}", file=sys.stderr, flush=True)


def read_prompt(args: argparse.Namespace) -> str | None:
    if args.prompt is not None:
        return args.prompt
    if sys.stdin is None or sys.stdin.isatty():
        return None
    return sys.stdin.read()


async def _run(args: argparse.Namespace, prompt: str) -> int:
    from sparktui.services.chat import ChatRequest

    try:
        target = await open_target(args)
    except TargetError as exc:
        _say(str(exc))
        return EXIT_FAILED
    try:
        messages = [{"role": "system", "content": args.system}] if args.system else []
        messages.append({"role": "user", "content": prompt})
        request = ChatRequest(target.model, messages, args.temperature, args.max_tokens)
        stream = await target.chat.answer(target.spec, request, telemetry=target.telemetry)
        try:
            async for piece in stream:
                if not args.json:
                    sys.stdout.write(piece)
                    sys.stdout.flush()
        except asyncio.CancelledError:
            await stream.stop()
            raise
        outcome = stream.outcome
        if args.json:
            result = {"endpoint": target.spec.url, "device": target.spec.device,
                      "model": target.model, "status": outcome.status, "error": outcome.error,
                      "finish_reason": outcome.finish_reason, "notes": outcome.notes,
                      "text": stream.text, **stream.figures.as_dict()}
            print(json.dumps(result, indent=2))
        else:
            if stream.text and not stream.text.endswith("\n"):
                sys.stdout.write("\n")
            sys.stdout.flush()
            _say(_summary(stream))
        if outcome.error:
            _say(outcome.error)
            return EXIT_FAILED
        return 0
    finally:
        await target.close()


def _summary(stream) -> str:
    from sparktui.core.openai_stats import describe_figures

    notes = "; ".join(stream.outcome.notes)
    return describe_figures(stream.figures.as_dict()) + (f" ({notes})" if notes else "")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    prompt = read_prompt(args)
    if prompt is None or not prompt.strip():
        _say("no prompt: give PROMPT or pipe one in on stdin")
        return EXIT_USAGE
    from sparktui.commands.status import quiet_logging

    restore = quiet_logging()
    try:
        return asyncio.run(_run(args, prompt))
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    finally:
        restore()
