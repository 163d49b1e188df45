"""The GPU-process loop (sparktui.core.gpuprocs): its script under real bash and sh,
its control lines, and its parser, fuzzed."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sparktui.core.gpuprocs import (
    ARG_SEPARATOR,
    GPUPROCS_BASH,
    GPUPROCS_MARKER,
    GPUPROCS_SH,
    GpuProcsBlockParser,
    ProcessDetail,
    container_id_from_cgroup,
    control_line,
    gpuprocs_command,
)
from tests.infra.common import require

FUZZ = settings(max_examples=100, deadline=None)
DOCKER_ID = "3f4e" * 16

BLOCK = f"""--- {GPUPROCS_MARKER} 0
app GPU-1b2c, 4242, /usr/bin/python3, 19135
proc 4242 1000 spark
cgroup 4242 12:memory:/docker/{DOCKER_ID}
cgroup 4242 0::/system.slice/containerd.service
cmdline 4242 python3\x1f-m\x1fvllm.entrypoints.openai.api_server\x1f--model\x1fQwen 3
app GPU-1b2c, 77, ollama, [N/A]
proc 77 997
--- end""".splitlines()


def test_a_block_joins_rows_with_what_proc_says():
    blocks = GpuProcsBlockParser().feed(BLOCK)
    assert len(blocks) == 1
    block = blocks[0]
    assert block.ok and [a.pid for a in block.apps] == [4242, 77]
    vllm = block.details[4242]
    assert vllm.uid == 1000 and vllm.user == "spark"
    assert vllm.cmdline == ("python3", "-m", "vllm.entrypoints.openai.api_server",
                            "--model", "Qwen 3")
    assert vllm.command == "python3 -m vllm.entrypoints.openai.api_server --model Qwen 3"
    assert vllm.container_id == DOCKER_ID
    assert vllm.cgroup_path == f"/docker/{DOCKER_ID}"  # the container's, not the v2 line
    ollama = block.details[77]
    assert ollama.uid == 997 and ollama.user is None  # not in /etc/passwd: missing, not ""
    assert ollama.cmdline is None and ollama.command is None and ollama.cgroup_path is None
    assert block.apps[1].used_memory_mib is None  # [N/A] is no value, never 0


def test_a_cut_block_never_comes_out_and_a_new_header_starts_over():
    parser = GpuProcsBlockParser()
    assert parser.feed(BLOCK[:4]) == []
    assert len(parser.feed(BLOCK)) == 1  # the header threw the cut block away


def test_nvidia_smi_failure_keeps_its_text_and_status():
    lines = [f"--- {GPUPROCS_MARKER} 9",
             "app NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver.",
             "--- end"]
    (block,) = GpuProcsBlockParser().feed(lines)
    assert not block.ok and block.exit_status == 9 and block.apps == ()
    assert "NVIDIA driver" in block.error_text


@pytest.mark.parametrize(("path", "expected"), [
    (f"/system.slice/docker-{DOCKER_ID}.scope", DOCKER_ID),
    (f"/docker/{DOCKER_ID}", DOCKER_ID),
    (f"/kubepods/besteffort/pod1/cri-containerd-{DOCKER_ID}.scope", DOCKER_ID),
    ("/user.slice/user-1000.slice/session-3.scope", None),
    ("/", None),
    (f"/docker/{DOCKER_ID}x", None),
])
def test_container_ids_in_cgroup_paths(path, expected):
    assert container_id_from_cgroup(path) == expected


def test_v2_line_places_a_process_outside_containers():
    detail = ProcessDetail(1, cgroups=("0::/user.slice/user-1000.slice/session-3.scope",))
    assert detail.cgroup_path == "/user.slice/user-1000.slice/session-3.scope"
    assert detail.container_id is None


def test_control_lines_and_the_command_clamp_the_period():
    assert control_line(50) == "period 200\n"
    assert control_line(3000) == "period 3000\n"
    assert control_line() == "poll\n"
    command = gpuprocs_command(30_000)
    assert f"{GPUPROCS_MARKER} 30000" in command and "exec bash --norc -c" in command


def _stand_in(tmp_path, pids: list[int]) -> dict[str, str]:
    """An nvidia-smi that lists `pids` as compute apps, once or every -lms N ms; each
    start appends a line to tmp_path/starts."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    rows = "".join(f"GPU-1, {pid}, /usr/bin/python3, 512\\n" for pid in pids)
    (bin_dir / "nvidia-smi").write_text(
        "#!/bin/sh\n"
        f"echo start >> {tmp_path}/starts\n"
        "ms=; prev=\n"
        'for a in "$@"; do [ "$prev" = -lms ] && ms=$a; prev=$a; done\n'
        "while :; do\n"
        f"  printf '{rows}'\n"
        '  [ -n "$ms" ] || exit 0\n'
        "  sleep $((ms / 1000)).$(printf %03d $((ms % 1000)))\n"
        "done\n")
    (bin_dir / "nvidia-smi").chmod(0o755)
    return dict(os.environ, PATH=f"{bin_dir}:{os.environ['PATH']}")


def _own_cgroups() -> tuple[str, ...]:
    with open("/proc/self/cgroup", encoding="utf-8") as fh:
        return tuple(fh.read().splitlines())


class Loop:
    """The script running under a real shell, its blocks read one by one."""

    def __init__(self, shell: str, script: str, period_ms: int, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen([shell, "-c", script, GPUPROCS_MARKER, str(period_ms)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                     env=env)
        self.parser = GpuProcsBlockParser()

    def block(self):
        assert self.proc.stdout is not None
        while True:
            line = self.proc.stdout.readline()
            assert line, "the loop ended"
            block = self.parser.feed_line(line.rstrip("\n"))
            if block is not None:
                return block

    def send(self, text: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(text)
        self.proc.stdin.flush()

    def close(self) -> None:
        # as the channel closing does: the loop stops its nvidia-smi and exits. A kill
        # of the shell alone left a quiet stand-in (no rows, no SIGPIPE) running forever.
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def test_under_bash_one_nvidia_smi_serves_every_sample(tmp_path):
    require(shutil.which("bash"), "bash (apt-get install bash)")
    argv = [sys.executable, "-c", "import time; time.sleep(60)", "an argument\nwith a newline"]
    sleeper = subprocess.Popen(argv, stdin=subprocess.DEVNULL)
    loop = Loop("bash", GPUPROCS_BASH, 60_000,
                _stand_in(tmp_path, [sleeper.pid, 999_999_999]))
    try:
        blocks = [loop.block()]  # the first sample comes at once
        loop.send(control_line())  # a 60 s period: only "poll" brings the next one now
        blocks.append(loop.block())
        loop.send(control_line(200))  # a new period: one restart serves every sample
        blocks += [loop.block() for _ in range(3)]
        assert (tmp_path / "starts").read_text().count("start") == 3
        assert loop.proc.stdin is not None
        loop.proc.stdin.close()  # the channel closing: the loop leaves, no SIGPIPE needed
        assert loop.proc.wait(timeout=10) == 0
    finally:
        loop.close()
        sleeper.kill()
        sleeper.wait()
    for block in blocks:
        assert block.ok and [a.pid for a in block.apps] == [sleeper.pid, 999_999_999]
        assert 999_999_999 not in block.details  # gone: nothing made up
    # /proc is read once per pid, in the first block that lists it
    first = blocks[0].details[sleeper.pid]
    assert all(sleeper.pid not in b.details for b in blocks[1:])
    # one line per field: a newline inside an argument became a space
    assert first.cmdline == (*argv[:3], "an argument with a newline")
    assert first.uid == os.getuid()
    assert first.cgroups == _own_cgroups()


def test_under_bash_an_empty_list_still_comes_as_blocks(tmp_path):
    """nvidia-smi prints nothing for no processes: silence for 1.5 periods is a block."""
    require(shutil.which("bash"), "bash (apt-get install bash)")
    loop = Loop("bash", GPUPROCS_BASH, 200, _stand_in(tmp_path, []))
    try:
        first, second = loop.block(), loop.block()
    finally:
        loop.close()
    assert first.ok and first.apps == () and second.apps == ()


def test_under_sh_rows_and_cgroups_come_without_command_lines(tmp_path):
    """Without bash: an nvidia-smi per period, every detail in every block."""
    loop = Loop("sh", GPUPROCS_SH, 200, _stand_in(tmp_path, [os.getpid()]))
    try:
        blocks = [loop.block(), loop.block()]
    finally:
        loop.close()
    for block in blocks:
        detail = block.details[os.getpid()]
        assert detail.cgroups == _own_cgroups() and detail.cmdline is None
        assert detail.uid == os.getuid()


# ---------------------------------------------------------------------------- fuzz

_near = st.sampled_from([f"--- {GPUPROCS_MARKER} 0", f"--- {GPUPROCS_MARKER} x", "--- end",
                         "app GPU-1, 12, x, 5", "app ,,,", "proc 12 1000 spark", "proc x",
                         "proc 12 99999999999999 y", "cgroup 12 0::/", "cgroup 12",
                         f"cmdline 12 a{ARG_SEPARATOR}b", "cmdline 12 ", "cmdline 1234567890123 x"])


@FUZZ
@given(st.lists(st.one_of(_near, st.text(max_size=60)), max_size=80))
def test_the_parser_takes_any_lines(lines):
    blocks = GpuProcsBlockParser().feed(lines)
    for block in blocks:
        for pid, detail in block.details.items():
            assert detail.pid == pid
            _ = detail.cgroup_path, detail.container_id, detail.command
        for app in block.apps:
            assert app.pid >= 0
