"""The simulated Spark's models on disk: its answer to MODELS_SCRIPT, and the same models as
files that the product's own script, run by a real `sh`, lists the same way."""

from __future__ import annotations

import subprocess

from sparktui.core.model_cache import MODELS_MARKER, MODELS_SCRIPT, parse_listing
from sparktui.sim.model_disk import DOWNLOAD_BYTES_S, SimModelDisk


class Clock:
    def __init__(self) -> None:
        self.now = 1_764_000_000.0

    def __call__(self) -> float:
        return self.now


def listed(output: str, home: str) -> dict[str, tuple]:
    listing = parse_listing(output)
    assert listing.home == home and listing.roots == {"hf": f"{home}/.cache/huggingface/hub"}
    return {m.name: (m.source, m.path, m.size_bytes, m.revision, bool(m.config_path),
                     m.downloading_bytes, round(m.last_used or 0)) for m in listing.models}


def test_the_answer_matches_the_script_on_the_same_files(tmp_path):
    clock = Clock()
    disk = SimModelDisk(clock)
    home = tmp_path / "home" / "spark"
    disk.seed_files(home)
    script = subprocess.run(["sh", "-c", MODELS_SCRIPT, MODELS_MARKER], capture_output=True,
                            text=True, env={"HOME": str(home), "PATH": "/usr/bin:/bin"},
                            check=True)
    from_files = listed(script.stdout, str(home))
    simulated = listed(disk.listing(str(home)), str(home))
    assert from_files == simulated
    assert from_files["meta-llama/Llama-3.1-8B-Instruct"][2] > 16 * 10**9
    assert from_files["gpt-oss-20b-mxfp4.gguf"][0] == "gguf"

    # the download grows with the clock, in both
    before = simulated["Qwen/Qwen3-30B-A3B"][5]
    clock.now += 2
    disk.grow_download(home)
    again = subprocess.run(["sh", "-c", MODELS_SCRIPT, MODELS_MARKER], capture_output=True,
                           text=True, env={"HOME": str(home), "PATH": "/usr/bin:/bin"},
                           check=True)
    grown = parse_listing(again.stdout)
    qwen3 = next(m for m in grown.models if m.name == "Qwen/Qwen3-30B-A3B")
    assert qwen3.downloading_bytes == before + 2 * DOWNLOAD_BYTES_S
    assert listed(disk.listing(str(home)), str(home))["Qwen/Qwen3-30B-A3B"][5] == \
        qwen3.downloading_bytes


def test_head_reads_a_config_and_rm_deletes_a_model():
    disk = SimModelDisk(Clock())
    home = "/home/demo"
    listing = parse_listing(disk.listing(home))
    llama = next(m for m in listing.models if m.name == "meta-llama/Llama-3.1-8B-Instruct")
    out, _err, status = disk.command("head", ["-c", "1048576", llama.config_path], home)
    assert status == 0 and '"num_key_value_heads": 8' in out
    _out, err, status = disk.command("head", ["-c", "10", "/etc/nothing"], home)
    assert status == 1 and "No such file" in err
    assert disk.command("rm", ["-rf", "--", llama.path], home) == ("", "", 0)
    assert "meta-llama/Llama-3.1-8B-Instruct" not in {
        m.name for m in parse_listing(disk.listing(home)).models}
