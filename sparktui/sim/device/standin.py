"""The simulated Spark's `nvidia-smi`, `docker` and `kill`: tools over files, like its others.

bin/NAME in the device root runs this file with NAME first. It reads what the
simulator writes under $SPARKTUI_ROOT: the GPU model's reading (sim.device.root
writes it on every refresh) and the containers' `docker ps` rows (the simulated
engine writes them on every container event; no file: no daemon). A `kill`
appends its pids to a file that the next refresh acts on, as the memory levers
work. Standard library only, run with python -S: it starts per call.
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


def read_reading() -> dict:
    with open(on_device(READING), encoding="utf-8") as fh:
        return json.load(fh)


def out(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


def nvidia_smi(args: list[str]) -> int:
    reading = read_reading()
    try:
        inv = nvsmi.parse(args, reading)
        text = nvsmi.tick(inv, reading, first=True)
    except nvsmi.NvsmiError as exc:
        sys.stdout.write(exc.stdout)
        sys.stderr.write(exc.stderr)
        return exc.exit_status
    start, n = time.monotonic(), 0
    while True:  # a loop keeps a fixed schedule, as the real one; ends when the reader goes
        out(text)
        if inv.interval is None:
            return 0
        n += 1
        time.sleep(max(0.0, start + n * inv.interval - time.monotonic()))
        text = nvsmi.tick(inv, read_reading(), first=False)


def kill(args: list[str]) -> int:
    """`kill [-SIG] PID...`: the product's way to end a (simulated) process. The errors are
    worded as dash's builtin words them; a container's process is root's."""
    apps = {app["pid"]: app for app in read_reading()["apps"]}
    status, pids = 0, []
    for word in [a for a in args if not a.startswith("-")]:
        pid = int(word) if word.isdigit() else None
        error = ("Illegal number" if pid is None else "No such process" if pid not in apps
                 else "Operation not permitted" if apps[pid]["container_id"] else "")
        if error:
            sys.stderr.write(f"sh: 1: kill: {error}\n")
            status = 1
        else:
            pids.append(f"{pid}\n")
    with open(on_device(KILLS), "a", encoding="utf-8") as fh:
        fh.write("".join(pids))
    return status


def docker(args: list[str]) -> int:
    """What the product runs: `docker version`, `docker ps --format '{{json .}}'` (chat's
    endpoint discovery) and the Containers tab's `docker exec -it ID sh`."""
    try:
        with open(on_device(CONTAINERS), encoding="utf-8") as fh:
            rows = [json.loads(line) for line in fh]
    except FileNotFoundError:
        sys.stderr.write(NO_DAEMON)
        return 1
    if args[:1] == ["version"]:
        out(DOCKER_VERSION + "\n")
        return 0
    if args[:1] == ["ps"]:
        for row in rows:
            if row["State"] == "running" or "-a" in args or "--all" in args:
                out(json.dumps(row) + "\n")
        return 0
    words = [w for w in args[1:] if w not in ("-i", "-t", "-it", "-ti")]
    if args[:1] == ["exec"] and len(words) == 2:
        return container_shell(rows, words[0])
    sys.stderr.write(f"docker: '{' '.join(args[:1])}' is not simulated here\n")
    return 1


def container_shell(rows: list[dict], ref: str) -> int:
    """A small shell "in" the container: prompt, read lines, answer; `exit` (or EOF) ends it."""
    name = ref.lstrip("/")
    # by name, or by an id: docker ps shows the first 12 digits, the product has all 64
    found = next((row for row in rows if name == row["Names"] or (len(name) >= 4 and (
        row["ID"].startswith(name) or name.startswith(row["ID"])))), None)
    if found is None or found["State"] != "running":
        sys.stderr.write(f"Error response from daemon: container {ref} is not running\n")
        return 1
    answers = {"hostname": found["ID"] + "\n", "pwd": "/\n"}
    status = 0
    while True:
        out("/ # ")
        line = sys.stdin.buffer.readline().decode(errors="replace")
        words = line.split() or [""]
        if not line or words[0] == "exit":
            return int(words[1]) if words[1:] and words[1].isdigit() else status
        if words[0] == "echo":
            answers["echo"] = " ".join(words[1:]) + "\n"
        if words[0]:
            status = 0 if words[0] in answers else 127
            out(answers.get(words[0], f"sh: {words[0]}: not simulated here\n"))


TOOLS = {"nvidia-smi": nvidia_smi, "kill": kill, "docker": docker}

if __name__ == "__main__":
    try:
        sys.exit(TOOLS[sys.argv[1]](sys.argv[2:]))
    except (BrokenPipeError, KeyboardInterrupt):  # the reader went: leave quietly, as the tool
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no flush error at exit
        sys.exit(0)
