"""The simulated Spark's models on disk: files that the product's own MODELS_SCRIPT, run by a
real `sh`, lists as it lists a Spark's caches (sizes, revisions, configs, a download)."""

from __future__ import annotations

import subprocess

from sparktui.core.model_cache import MODELS_MARKER, MODELS_SCRIPT, parse_listing
from sparktui.sim.device.model_disk import DOWNLOAD_BYTES_S, SimModelDisk, demo_models


class Clock:
    def __init__(self) -> None:
        self.now = 1_764_000_000.0

    def __call__(self) -> float:
        return self.now


def listing_of(home) -> dict:
    script = subprocess.run(["sh", "-c", MODELS_SCRIPT, MODELS_MARKER], capture_output=True,
                            text=True, env={"HOME": str(home), "PATH": "/usr/bin:/bin"},
                            check=True)
    listing = parse_listing(script.stdout)
    assert listing.home == str(home)
    assert listing.roots == {"hf": f"{home}/.cache/huggingface/hub"}
    return {m.name: m for m in listing.models}


def test_the_script_lists_the_seeded_models_and_the_download_grows(tmp_path):
    clock = Clock()
    disk = SimModelDisk(clock)
    home = tmp_path / "home" / "spark"
    disk.seed_files(home)
    models = listing_of(home)
    assert set(models) == {m.name for m in demo_models()}
    for model in demo_models():
        listed = models[model.name]
        assert listed.source == model.source
        if model.downloading_from is None:
            assert listed.size_bytes == sum(model.shards) + (
                len(open(listed.config_path).read()) if listed.config_path else 0)
            assert round(listed.last_used or 0) == round(clock.now - model.last_used_days * 86_400)
    llama = models["meta-llama/Llama-3.1-8B-Instruct"]
    assert llama.revision and '"num_key_value_heads": 8' in open(llama.config_path).read()

    before = models["Qwen/Qwen3-30B-A3B"].downloading_bytes
    clock.now += 2
    disk.grow_download(home)
    assert listing_of(home)["Qwen/Qwen3-30B-A3B"].downloading_bytes == \
        before + 2 * DOWNLOAD_BYTES_S
