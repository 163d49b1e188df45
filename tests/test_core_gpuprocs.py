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
    GPUPROCS_MARKER,
    GPUPROCS_SCRIPT,
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
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    rows = "".join(f"echo 'GPU-1, {pid}, /usr/bin/python3, 512'\n" for pid in pids)
    (bin_dir / "nvidia-smi").write_text(f"#!/bin/sh\n{rows}")
    (bin_dir / "nvidia-smi").chmod(0o755)
    return dict(os.environ, PATH=f"{bin_dir}:{os.environ['PATH']}")


def _own_cgroups() -> tuple[str, ...]:
    with open("/proc/self/cgroup", encoding="utf-8") as fh:
        return tuple(fh.read().splitlines())


def test_the_script_under_bash_reads_proc_and_obeys_control_lines(tmp_path):
    require(shutil.which("bash"), "bash (apt-get install bash)")
    argv = [sys.executable, "-c", "import time; time.sleep(60)", "an argument\nwith a newline"]
    sleeper = subprocess.Popen(argv, stdin=subprocess.DEVNULL)
    try:
        loop = subprocess.Popen(["bash", "-c", GPUPROCS_SCRIPT, GPUPROCS_MARKER, "60000"],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                env=_stand_in(tmp_path, [sleeper.pid, 999_999_999]))
        assert loop.stdin is not None and loop.stdout is not None
        parser = GpuProcsBlockParser()
        blocks = []

        def next_block():
            while True:
                line = loop.stdout.readline()
                assert line, "the loop ended"
                block = parser.feed_line(line.rstrip("\n"))
                if block is not None:
                    return block

        blocks.append(next_block())  # the first poll comes at once
        loop.stdin.write("poll\n")  # a 60 s period: only the control line brings this one
        loop.stdin.flush()
        blocks.append(next_block())
        loop.stdin.write("period 250\n")
        loop.stdin.flush()
        blocks.append(next_block())
        blocks.append(next_block())  # 250 ms later, by itself
        loop.stdin.close()  # the channel closing: the loop leaves at once, no SIGPIPE needed
        assert loop.wait(timeout=10) == 0
    finally:
        sleeper.kill()
        sleeper.wait()
    for block in blocks:
        assert [a.pid for a in block.apps] == [sleeper.pid, 999_999_999]
        detail = block.details[sleeper.pid]
        # one line per field: a newline inside an argument became a space
        assert detail.cmdline == (*argv[:3], "an argument with a newline")
        assert detail.uid == os.getuid()
        assert detail.cgroups == _own_cgroups()
        assert 999_999_999 not in block.details  # gone: nothing made up


def test_the_script_under_sh_still_lists_rows_and_cgroups(tmp_path):
    """Without bash: a fixed period, no command lines, the rest as under bash."""
    env = _stand_in(tmp_path, [os.getpid()])
    loop = subprocess.Popen(["sh", "-c", GPUPROCS_SCRIPT, GPUPROCS_MARKER, "200"],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True, env=env)
    assert loop.stdout is not None
    parser = GpuProcsBlockParser()
    try:
        blocks = []
        while len(blocks) < 2:
            line = loop.stdout.readline()
            assert line, "the loop ended"
            block = parser.feed_line(line.rstrip("\n"))
            if block is not None:
                blocks.append(block)
    finally:
        loop.kill()
        loop.wait()
    detail = blocks[-1].details[os.getpid()]
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
