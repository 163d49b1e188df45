"""The simulated Spark's `nvidia-smi`, `docker` and `kill`: tools over its files, as its others.

bin/NAME runs this file with NAME first. It reads under $SPARKTUI_ROOT the GPU
model's reading (sim.device.root writes it on every refresh) and the containers'
`docker ps` rows (the engine writes them on every container event; no file: no
daemon); `kill` appends to a file that the next refresh acts on, as the memory
levers work. Standard library only, run with python -S: it starts per call.
"""

import json
import os
import sys
import time

if __name__ == "__main__":  # run by bin/NAME: nvsmi is in the checkout this file is in
    sys.path.insert(0, __file__.rsplit(os.sep, 4)[0])  # .../sparktui/sim/device/standin.py
from sparktui.sim.device import nvsmi

READING = "sim/nvidia-smi.json"
KILLS = "sim/kill-requests"  # a pid a line
CONTAINERS = "sim/docker-ps.jsonl"
DOCKER_VERSION = "28.3.3"
NO_DAEMON = ("Cannot connect to the Docker daemon at unix:///var/run/docker.sock. "
             "Is the docker daemon running?\n")


def on_device(relative: str) -> str:
    return os.path.join(os.environ["SPARKTUI_ROOT"], relative)


def reading() -> dict:
    with open(on_device(READING), encoding="utf-8") as fh:
        return json.load(fh)


def nvidia_smi(args: list[str]) -> int:
    current = reading()
    try:
        inv = nvsmi.parse(args, current)
        text = nvsmi.tick(inv, current, first=True)
    except nvsmi.NvsmiError as exc:
        print(exc.stdout, end="")
        print(exc.stderr, end="", file=sys.stderr)
        return exc.exit_status
    start, n = time.monotonic(), 0
    while True:  # a loop keeps a fixed schedule, as the real one; ends when the reader goes
        print(text, end="", flush=True)
        if inv.interval is None:
            return 0
        n += 1
        time.sleep(max(0.0, start + n * inv.interval - time.monotonic()))
        text = nvsmi.tick(inv, reading(), first=False)


def kill(args: list[str]) -> int:
    """`kill [-SIG] PID...`, the product's way to end a process: errors in dash's words."""
    apps = {app["pid"]: app for app in reading()["apps"]}
    status = 0
    for word in [a for a in args if not a.startswith("-")]:
        pid = int(word) if word.isdigit() else None
        error = ("Illegal number" if pid is None else "No such process" if pid not in apps
                 else "Operation not permitted" if apps[pid]["container_id"] else "")  # root's
        if error:
            print(f"sh: 1: kill: {error}", file=sys.stderr)
            status = 1
        else:
            with open(on_device(KILLS), "a", encoding="utf-8") as fh:
                fh.write(f"{pid}\n")
    return status


def docker(args: list[str]) -> int:
    """What the product runs: `docker version`, `docker ps --format '{{json .}}'` (chat's
    endpoint discovery) and the Containers tab's `docker exec -it ID sh`."""
    try:
        with open(on_device(CONTAINERS), encoding="utf-8") as fh:
            rows = [json.loads(line) for line in fh]
    except FileNotFoundError:
        print(NO_DAEMON, end="", file=sys.stderr)
        return 1
    if args[:1] == ["version"]:
        print(DOCKER_VERSION)
        return 0
    if args[:1] == ["ps"]:
        for row in rows:
            if row["State"] == "running" or "-a" in args or "--all" in args:
                print(json.dumps(row))
        return 0
    words = [w for w in args[1:] if w not in ("-i", "-t", "-it", "-ti")]
    if args[:1] == ["exec"] and len(words) == 2:
        return container_shell(rows, words[0])
    print(f"docker: '{' '.join(args[:1])}' is not simulated here", file=sys.stderr)
    return 1


def container_shell(rows: list[dict], ref: str) -> int:
    """A small shell "in" the container: prompt, read lines, answer; `exit` (or EOF) ends it."""
    name = ref.lstrip("/")
    # by name, or by an id: docker ps shows the first 12 digits, the product has all 64
    found = next((row for row in rows if name == row["Names"] or (len(name) >= 4 and (
        row["ID"].startswith(name) or name.startswith(row["ID"])))), None)
    if found is None or found["State"] != "running":
        print(f"Error response from daemon: container {ref} is not running", file=sys.stderr)
        return 1
    status = 0
    while True:
        print("/ # ", end="", flush=True)
        line = sys.stdin.buffer.readline().decode(errors="replace")
        command, *rest = line.split() or [""]
        if not line or command == "exit":
            return int(rest[0]) if rest and rest[0].isdigit() else status
        answers = {"hostname": found["ID"], "pwd": "/", "echo": " ".join(rest)}
        if command:
            status = 0 if command in answers else 127
            print(answers.get(command, f"sh: {command}: not simulated here"), flush=True)


TOOLS = {"nvidia-smi": nvidia_smi, "kill": kill, "docker": docker}

if __name__ == "__main__":
    try:
        sys.exit(TOOLS[sys.argv[1]](sys.argv[2:]))
    except (BrokenPipeError, KeyboardInterrupt):  # the reader went: leave quietly, as the tool
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no flush error at exit
        sys.exit(0)
