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

Reaching the device and the endpoint is sparktui.commands.target's, shared with
`sparktui bench`, `fit` and `serving`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

from sparktui.commands.options import add_connection_options
from sparktui.commands.target import TargetError, open_target
from sparktui.commands.target import say as _say

EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
#: the whole answer, first byte to last: a server that trickles keep-alives ends here
DEFAULT_TIMEOUT_S = 600.0


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
