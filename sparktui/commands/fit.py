"""`sparktui fit`: will a model fit on a device now, with the arithmetic shown.

    sparktui fit [--context N] [--concurrency C] [--kv-dtype D] [--json] DEVICE MODEL
    sparktui fit [--json] DEVICE --serve "vllm serve ORG/NAME --max-model-len 32768"

MODEL is a Hugging Face id (ORG/NAME) found in the device's HF hub or NIM
cache, a GGUF file name, or an Ollama tag. Its size on disk and config.json
come from the device (one exec to list the caches, one to read the config);
MemFree and MemAvailable from the telemetry host stream as they are now.
With --serve, a server's command line is weighed as the deploy form weighs
it: the model, context, concurrency and KV dtype come from the engine's flags,
and vLLM by the share of MemTotal it takes at start.
Exit status 0 for yes, 3 for tight, 4 for no, 1 when it could not be weighed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any

from sparktui.commands.options import add_connection_options

EXIT_FAILED = 1
EXIT_BY_VERDICT = {"yes": 0, "tight": 3, "no": 4, "unknown": EXIT_FAILED}
MEMORY_WAIT_S = 10.0


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: must be at least 1")
    return value


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="sparktui fit",
        description="Say whether MODEL fits in DEVICE's memory now: weights on disk plus the "
                    "KV cache for the context and concurrency, against MemFree and "
                    "MemAvailable.")
    p.add_argument("device", metavar="DEVICE",
                   help="`local`, [user@]host[:port], an ssh Host alias or a device name")
    p.add_argument("model", metavar="MODEL", nargs="?",
                   help="ORG/NAME in the HF or NIM cache, a GGUF file name or an Ollama tag")
    p.add_argument("--serve", metavar="CMD",
                   help="weigh a server's command line instead (as the deploy form does): "
                        "its model, context, concurrency, KV dtype and vLLM's memory share")
    p.add_argument("--context", type=_positive, default=8192, metavar="N",
                   help="context length per sequence, in tokens (default 8192)")
    p.add_argument("--concurrency", type=_positive, default=1, metavar="C",
                   help="sequences held at once (default 1)")
    p.add_argument("--kv-dtype", default="bf16", metavar="D",
                   help="the KV-cache element type: bf16, fp16, fp8 (default bf16)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    add_connection_options(p)
    return p


async def weigh_on_device(link, model_name: str, *, context: int, concurrency: int,
                          kv_dtype: str, telemetry=None) -> dict[str, Any]:
    """The same weighing as the deploy form's (services.fit_check), for one named model."""
    from sparktui.services.fit_check import FitCheck, memory_now
    from sparktui.services.models_disk import ModelStore

    check = FitCheck(ModelStore(link), telemetry)
    listing = await check.load()
    model = check.find(model_name)
    if model is None:
        known = ", ".join(sorted(m.name for m in listing.models)) or "none"
        raise LookupError(f"{model_name} is not on {link.name}'s disk (found: {known})")
    config = await check.config(model)
    await _memory(telemetry)
    free, available = memory_now(telemetry)
    verdict = check.weigh(model.name, model, config, context=context,
                          concurrency=concurrency, kv_dtype=kv_dtype)
    return {"device": link.name, "model": model.name, "source": model.source,
            "path": model.path, "context": context, "concurrency": concurrency,
            "kv_dtype": kv_dtype, "mem_free_bytes": free, "mem_available_bytes": available,
            **verdict.as_dict()}


async def weigh_command(link, command: str, *, telemetry=None) -> dict[str, Any]:
    """A server's command line, weighed as the deploy form weighs it."""
    from sparktui.services.fit_check import FitCheck, mem_total, memory_now
    from sparktui.services.models_disk import ModelStore

    check = FitCheck(ModelStore(link), telemetry)
    await check.load()
    first = check.for_command(command)
    if first.cached is not None:
        await check.config(first.cached)
    await _memory(telemetry)
    result = check.for_command(command)
    if result.verdict is None:
        raise LookupError("the command names no model (vllm serve M, --model-path M, "
                          "-m FILE, -hf REPO or MODEL_HANDLE)")
    free, available = memory_now(telemetry)
    cached = result.cached
    return {"device": link.name, "command": command, "model": result.model,
            "source": cached.source if cached else None, "path": cached.path if cached else None,
            "context": result.shape.context_tokens, "concurrency": result.shape.concurrency,
            "kv_dtype": result.shape.kv_dtype, "mem_free_bytes": free,
            "mem_available_bytes": available, "mem_total_bytes": mem_total(telemetry),
            **result.verdict.as_dict(), "arithmetic": list(result.arithmetic)}


async def _memory(telemetry) -> None:
    """Wait (a little) for the telemetry stream's first memory figures."""
    from sparktui.services.fit_check import memory_now

    if telemetry is None:
        return
    loop = asyncio.get_running_loop()
    deadline = loop.time() + MEMORY_WAIT_S
    while memory_now(telemetry)[1] is None and loop.time() < deadline:
        await asyncio.sleep(0.1)


async def _run(args: argparse.Namespace) -> int:
    from sparktui.commands.target import TargetError, device_session, say

    args.demo = False
    if not args.model and not args.serve:
        say("give MODEL, or --serve with a server's command line")
        return EXIT_FAILED
    try:
        async with device_session(args, refresh_interval=0.5, telemetry=True) as device:
            if args.serve:
                report = await weigh_command(device.link, args.serve,
                                             telemetry=device.telemetry)
            else:
                report = await weigh_on_device(
                    device.link, args.model, context=args.context,
                    concurrency=args.concurrency, kv_dtype=args.kv_dtype,
                    telemetry=device.telemetry)
    except (TargetError, LookupError, RuntimeError) as exc:
        say(str(exc))
        return EXIT_FAILED
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        from sparktui.core.fit import VERDICT_WORDS
        from sparktui.core.sanitize import strip_control

        word = VERDICT_WORDS.get(report["verdict"], report["verdict"]).upper()
        print(strip_control(f"{report['model']} on {report['device']}: {word}"))
        print("\n".join(strip_control(line) for line in report["arithmetic"]))
    return EXIT_BY_VERDICT.get(report["verdict"], EXIT_FAILED)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    from sparktui.commands.status import quiet_logging

    restore = quiet_logging()
    try:
        return asyncio.run(_run(args))
    except KeyboardInterrupt:
        return 130
    finally:
        restore()
