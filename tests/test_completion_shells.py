"""`sparktui completion SHELL`, loaded by a real bash, zsh and fish.

Each shell sources the script that `sparktui completion SHELL` prints and completes
`sparktui sta` and a device alias the way it would on a Tab: bash through the
completion function with COMP_WORDS set, zsh through the function with `words` and
CURRENT set (compadd captured), fish with `complete -C`. The `sparktui` on PATH is
a shim running this checkout; HOME is private, with a config device and a
~/.ssh/config Host alias.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.infra import REPO_ROOT, require


@pytest.fixture
def shell_env(tmp_path: Path) -> dict[str, str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    shim = bin_dir / "sparktui"
    shim.write_text(f"#!/bin/sh\nexec '{sys.executable}' -m sparktui \"$@\"\n")
    shim.chmod(0o755)
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "config").write_text(
        "Host spark-lab\n    HostName 192.0.2.7\nHost *\n    ServerAliveInterval 5\n")
    config = tmp_path / "config.toml"
    config.write_text('[[devices]]\nname = "spark-desk"\nhost = "spark-desk.local"\n')
    return {"PATH": f"{bin_dir}:/usr/bin:/bin", "HOME": str(home), "PYTHONPATH": REPO_ROOT,
            "SPARKTUI_CONFIG": str(config), "NV_SYNC_SSH_CONFIG": str(tmp_path / "none"),
            "LANG": "C.UTF-8"}


def script(shell: str, env: dict[str, str]) -> str:
    return subprocess.run([sys.executable, "-m", "sparktui", "completion", shell],
                          capture_output=True, text=True, env=env, check=True,
                          timeout=30).stdout


def run_shell(argv: list[str], env: dict[str, str]) -> list[str]:
    result = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=60)
    assert result.returncode == 0, result.stderr
    return [line.split("\t")[0] for line in result.stdout.splitlines() if line.strip()]


def bash_complete(line_words: list[str], env: dict[str, str], tmp_path: Path) -> list[str]:
    path = tmp_path / "sparktui.bash"
    path.write_text(script("bash", env))
    words = " ".join(f"'{w}'" for w in line_words)
    program = (f"source {path}; COMP_WORDS=({words}); COMP_CWORD={len(line_words) - 1}; "
               "_sparktui; printf '%s\\n' \"${COMPREPLY[@]}\"")
    return run_shell(["bash", "--norc", "--noprofile", "-c", program], env)


def test_bash_completes_subcommands_options_and_devices(shell_env, tmp_path) -> None:
    require(shutil.which("bash"), "bash")
    assert bash_complete(["sparktui", "sta"], shell_env, tmp_path) == ["status"]
    assert bash_complete(["sparktui", "doc"], shell_env, tmp_path) == ["doctor"]
    assert bash_complete(["sparktui", "spark-"], shell_env, tmp_path) == \
        ["spark-desk", "spark-lab"]
    assert bash_complete(["sparktui", "status", "--wa"], shell_env, tmp_path) == ["--watch"]
    assert bash_complete(["sparktui", "chat", "--device", "spark-l"], shell_env,
                         tmp_path) == ["spark-lab"]
    assert bash_complete(["sparktui", "completion", ""], shell_env, tmp_path) == \
        ["bash", "zsh", "fish"]
    # the Host * pattern is not a name ssh accepts: never offered
    assert "*" not in bash_complete(["sparktui", ""], shell_env, tmp_path)


def test_bash_loads_it_as_a_user_does(shell_env, tmp_path) -> None:
    """`source <(sparktui completion bash)` registers the function for `sparktui`."""
    require(shutil.which("bash"), "bash")
    out = run_shell(["bash", "--norc", "--noprofile", "-c",
                     "source <(sparktui completion bash); complete -p sparktui"], shell_env)
    assert out == ["complete -o default -F _sparktui sparktui"]


def test_zsh_completes_a_subcommand_and_a_device(shell_env, tmp_path) -> None:
    require(shutil.which("zsh"), "zsh (apt-get install zsh)")
    path = tmp_path / "_sparktui"
    path.write_text(script("zsh", shell_env))

    def complete(*words: str) -> list[str]:
        quoted = " ".join(f"'{w}'" for w in words)
        program = ("compdef() { :; }; compadd() { while [[ $1 != -- ]]; do shift; done; "
                   "shift; print -rl -- \"$@\"; }; _files() { print FILES; }; "
                   f"source {path}; words=({quoted}); CURRENT={len(words)}; _sparktui")
        return run_shell(["zsh", "-f", "-c", program], shell_env)

    assert complete("sparktui", "sta") == ["status"]
    assert complete("sparktui", "status", "spark-l") == ["spark-lab"]
    assert complete("sparktui", "status", "--config", "") == ["FILES"]


def test_fish_completes_a_subcommand_and_a_device(shell_env) -> None:
    require(shutil.which("fish"), "fish (apt-get install fish)")
    env = {**shell_env, "XDG_CONFIG_HOME": shell_env["HOME"] + "/.config"}

    def complete(line: str) -> list[str]:
        program = f"sparktui completion fish | source; complete -C '{line}'"
        return run_shell(["fish", "--no-config", "-c", program], env)

    assert complete("sparktui sta") == ["status"]
    assert complete("sparktui logs spark-d") == ["spark-desk"]
