"""`sparktui bench --sweep` on the demo: pp and tg rows by depth and concurrency, with tok/J."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest

from sparktui.commands.bench_sweep import parse_levels, prompt_of, render_table
from tests.infra import REPO_ROOT


@pytest.mark.timeout(240)  # the demo starts in-process: slow on a loaded 2-core machine
def test_sweep_rows_in_the_published_shape(tmp_path):
    command = [sys.executable, "-m", "sparktui", "bench", "--demo", "--sweep", "--depths",
               "0,64", "--levels", "1,2", "--pp", "16", "--tg", "8", "--json"]
    # PYTHONFAULTHANDLER: a run that hangs is ended with SIGABRT, and says where it hung
    env = {**os.environ, "PYTHONPATH": REPO_ROOT, "HOME": str(tmp_path),
           "PYTHONFAULTHANDLER": "1"}
    with subprocess.Popen(command, cwd=REPO_ROOT, env=env, text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE) as process:
        try:
            stdout, stderr = process.communicate(timeout=200)
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGABRT)
            stdout, stderr = process.communicate(timeout=30)
            pytest.fail(f"bench --demo hung; its output:\n{stdout}\nand stderr:\n{stderr}")
    assert process.returncode == 0, stderr
    rows = json.loads(stdout)
    assert [(r["test"], r["concurrency"]) for r in rows] == [
        ("pp16 @ d0", 1), ("tg8 @ d0", 1), ("pp16 @ d0", 2), ("tg8 @ d0", 2),
        ("pp16 @ d64", 1), ("tg8 @ d64", 1), ("pp16 @ d64", 2), ("tg8 @ d64", 2)]
    for row in rows:
        assert row["errors"] == 0 and row["tokens_per_s"] > 0
        assert row["tokens_per_j"] is not None and row["tokens_per_j"] > 0
    # the simulated server sends usage: prompt counts are its own, not estimates
    assert not any(r["estimated"] for r in rows if r["test"].startswith("pp"))
    table = render_table(rows)
    assert table.splitlines()[0] == "| model | test | c | t/s | t/s per req | ttft (ms) | tok/J |"


def test_levels_and_prompts():
    assert parse_levels("0, 2048") == (0, 2048)
    for bad in ("", "a", "-1"):
        try:
            parse_levels(bad)
        except ValueError:
            continue
        raise AssertionError(f"{bad!r} accepted")
    assert len(prompt_of(100, 1).split()) >= 100 and prompt_of(5, 1) != prompt_of(5, 2)
