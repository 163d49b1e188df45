"""The fit verdict before a deploy: what a server's command says, and the form on the demo.

The command-line reading is checked against flags worked by hand for each engine;
the form is driven with Pilot on the live demo, whose device lists its models
through the product's listing (sim.device.root: files a real sh lists).
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from textual.widgets import Input, RichLog

from sparktui.core.fit import GIB, FitInput, weigh
from sparktui.core.serve_shape import find_model, requested_model, serve_shape, tokens
from sparktui.services.config import Config
from sparktui.services.fit_check import memory_now
from sparktui.services.session import Session
from sparktui.services.store import ConfigStore
from sparktui.ui.app import SparkApp
from sparktui.ui.containers.deploy import DeployScreen
from sparktui.ui.containers.deploy_fit import DeployFit
from tests.infra.pilot import wait_until
from tests.test_ui_shell import REPO_THEMES

ON_DISK = ["meta-llama/Llama-3.1-8B-Instruct", "Qwen/Qwen2.5-7B-Instruct",
           "ggml-org_gpt-oss-20b-GGUF_gpt-oss-20b-mxfp4.gguf", "gpt-oss-20b-mxfp4.gguf"]


def test_each_engines_flags():
    vllm = serve_shape("vllm serve M --max-model-len 32k --max-num-seqs 4 "
                       "--kv-cache-dtype fp8")
    assert (vllm.context_tokens, vllm.concurrency, vllm.kv_dtype) == (32768, 4, "fp8")
    sglang = serve_shape("python3 -m sglang.launch_server --model-path M "
                         "--context-length=16384 --max-running-requests 8")
    assert (sglang.context_tokens, sglang.concurrency) == (16384, 8)
    # llama.cpp: -c is one pool the -np slots share, so the slots add nothing
    llama = serve_shape("-hf ggml-org/gpt-oss-20b-GGUF -c 65536 -np 4 -ctk q8_0")
    assert (llama.context_tokens, llama.concurrency, llama.kv_dtype) == (65536, 1, "q8_0")
    assert any("shared by its slots" in note for note in llama.notes)
    trt = serve_shape("trtllm-serve M --max_seq_len 4096 --max_batch_size 2")
    assert (trt.context_tokens, trt.concurrency) == (4096, 2)
    bare = serve_shape("vllm serve M")
    assert (bare.context_tokens, bare.concurrency, bare.kv_dtype) == (8192, 1, "bf16")
    assert all("assumed" in note for note in bare.notes[:3])
    # vLLM takes a share of the whole memory at start: 0.9 unless told
    assert (vllm.reserve_fraction, bare.reserve_fraction) == (0.9, 0.9)
    assert "vLLM's default share" in bare.notes[3]
    shared = serve_shape("python3 -m vllm.entrypoints.openai.api_server --model M "
                         "--gpu-memory-utilization 0.7")
    assert (shared.reserve_fraction, shared.reserve_source) == (0.7, "--gpu-memory-utilization")
    assert sglang.reserve_fraction is None and llama.reserve_fraction is None
    assert tokens("1M") == 1024**2 and tokens("0") is None and tokens("x") is None


def test_the_model_a_command_serves():
    assert requested_model("vllm serve Qwen/Qwen2.5-7B-Instruct --port 8000") == \
        "Qwen/Qwen2.5-7B-Instruct"
    assert requested_model("python3 -m sglang.launch_server --model-path A/B") == "A/B"
    assert requested_model("python3 -m vllm.entrypoints.openai.api_server") is None
    assert requested_model("", {"MODEL_HANDLE": "X/Y"}) == "X/Y"
    assert find_model("vllm serve meta-llama/Llama-3.1-8B-Instruct", None, ON_DISK) == \
        "meta-llama/Llama-3.1-8B-Instruct"
    # llama.cpp's cache keeps `-hf ORG/NAME` files as ORG_NAME_FILE.gguf
    assert find_model("-hf ggml-org/gpt-oss-20b-GGUF --port 30000", None, ON_DISK) == \
        "ggml-org_gpt-oss-20b-GGUF_gpt-oss-20b-mxfp4.gguf"
    assert find_model("llama-server -m /models/gpt-oss-20b-mxfp4.gguf", None, ON_DISK) == \
        "gpt-oss-20b-mxfp4.gguf"
    assert find_model("vllm serve Qwen/Qwen3-8B", None, ON_DISK) is None  # asked, not here
    assert find_model("serve", {"MODEL": "Qwen/Qwen2.5-7B-Instruct"}, ON_DISK) == \
        "Qwen/Qwen2.5-7B-Instruct"


@given(st.text(max_size=200))
def test_fuzz_commands_never_crash(command):
    shape = serve_shape(command)
    assert shape.context_tokens >= 1 and shape.concurrency >= 1
    find_model(command, {"MODEL": command}, ON_DISK)


def test_what_vllm_takes_by_hand():
    # Llama-3.1-8B at 8192 x 4: 16060522496 B weights + 4 GiB KV + 2 GiB = 20.96 GiB needed;
    # vLLM at 0.5 of a 120 GiB MemTotal takes 60 GiB, and its start-up check wants it free
    llama = {"num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 8,
             "hidden_size": 4096}

    def verdict(share: float, free: float, available: float):
        return weigh(FitInput("llama", 16_060_522_496, llama, 8192, 4, mem_free=int(free * GIB),
                              mem_available=int(available * GIB),
                              reserve_bytes=int(share * 120 * GIB), reserve_detail="vLLM"))

    roomy = verdict(0.5, free=70, available=100)
    assert roomy.verdict == "yes" and "10.00 GiB to spare" in roomy.reason  # 70 - 60
    assert roomy.need_bytes == 22_502_973_440 and roomy.reserve_bytes == 60 * GIB
    assert any(line.startswith("the engine takes      60.00 GiB") for line in roomy.arithmetic)
    # the model alone would fit in 50 GiB free; vLLM's 60 GiB does not
    assert verdict(0.5, free=50, available=100).verdict == "tight"
    short = verdict(0.5, free=30, available=55)
    assert short.verdict == "no" and short.reason.startswith("5.00 GiB more than MemAvailable")
    assert "the model itself needs 20.96 GiB: a smaller share would do" in short.reason
    small = verdict(0.1, free=100, available=110)  # 12 GiB: less than the model needs
    assert small.verdict == "no" and "more than the 12.00 GiB the engine takes" in small.reason


def test_a_model_not_on_disk_is_weighed_with_its_size_missing():
    verdict = weigh(FitInput("Qwen/Qwen3-8B", None, None, 8192, mem_free=64 * GIB,
                             mem_available=90 * GIB))
    assert verdict.verdict == "unknown" and verdict.need_bytes is None
    assert "its size is missing" in verdict.reason
    assert verdict.arithmetic[0].startswith("weights on disk       —")


async def test_the_deploy_form_says_whether_the_model_fits(tmp_path) -> None:
    config = Config(path=tmp_path / "sparktui.toml")
    session = Session(config, [], store=ConfigStore(config.path), demo=True,
                      data_dir=tmp_path / "data")
    app = SparkApp(config, session=session, theme_dirs=[REPO_THEMES])
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("3")
        await wait_until(pilot, lambda: bool(app.fleet.links) and app.telemetry.get(
            "spark-demo") is not None and memory_now(app.telemetry.get("spark-demo"))[0]
            is not None, timeout=60, what="the demo's memory figures")
        await pilot.press("D")
        await wait_until(pilot, lambda: isinstance(app.screen, DeployScreen), what="the form")
        screen = app.screen
        assert isinstance(screen, DeployScreen)
        fit = screen.query_one(DeployFit)

        def shown() -> str:
            return str(fit.render())

        # Ollama picks its model after the deploy: the verdict says there is none to weigh
        await wait_until(pilot, lambda: fit.check is not None and fit.check.listing
                         is not None, timeout=30, what="the models listed")
        assert "can't tell" in shown() and "names no model" in shown()

        # the vLLM preset's own model is on the demo's disk: weighed for real, with the
        # share of memory vLLM takes when the command does not say
        await pilot.press("down")
        await wait_until(pilot, lambda: "Qwen/Qwen2.5-0.5B-Instruct: needs" in shown()
                         and "KV —" not in shown(), what="the vLLM preset's verdict")
        assert ", vLLM takes " in shown()
        # Qwen2.5-0.5B: 24 layers x 2 x 2 KV heads x 64 x 2 B = 12 KiB a token; 8192 x 1
        assert "KV 0.09 GiB for 8192 x 1" in shown()

        command = screen.query_one("#field-command", Input)
        command.value = ("vllm serve meta-llama/Llama-3.1-8B-Instruct --max-model-len 32768 "
                         "--max-num-seqs 4")
        # Llama-3.1-8B: 32 layers x 2 x 8 KV heads x 128 x 2 B = 128 KiB a token;
        # 32768 x 4 tokens -> 16.00 GiB of KV cache, once its config.json is read
        await wait_until(pilot, lambda: "KV 16.00 GiB for 32768 x 4" in shown(),
                         timeout=20, what="the Llama verdict with its KV cache")
        result = fit.result
        assert result is not None and result.verdict is not None
        weights = result.cached.size_bytes
        assert result.verdict.need_bytes == weights + 16 * GIB + 2 * GIB
        word = {"yes": "FITS", "tight": "TIGHT", "no": "WON'T FIT"}[result.verdict.verdict]
        assert shown().startswith(f"Fit now: {word} · meta-llama/Llama-3.1-8B-Instruct")
        assert "MemFree " in shown() and "MemFree —" not in shown()
        assert ", vLLM takes " in shown()  # 0.9 of MemTotal: vLLM's default share
        log = "\n".join(str(line.text) for line in screen.query_one("#deploy-log",
                                                                       RichLog).lines)
        assert "Will it fit, before you deploy:" in log
        assert "context 32768 tokens, from --max-model-len" in log
        assert "the engine takes" in log and "vLLM: 0.9 x MemTotal" in log

        # /dev/shm is the same memory: a shared-memory size is said, not counted
        screen.query_one("#field-shm_size", Input).value = "16g"
        await wait_until(pilot, lambda: "shared memory up to 16g comes from the same memory"
                         in "\n".join(str(line.text) for line in
                                      screen.query_one("#deploy-log", RichLog).lines),
                         what="the shared-memory note")

        # a model the command asks for that is not on the device: its size is missing
        command.value = "vllm serve Qwen/Qwen3-8B --max-model-len 8192"
        await wait_until(pilot, lambda: "Qwen/Qwen3-8B" in shown(), what="the absent model")
        assert shown().startswith("Fit now: CAN'T TELL")
        assert "weights — (not on disk)" in shown() and "its size is missing" in shown()

        # whatever the command holds reaches the terminal without its escapes
        command.value = "vllm serve acme/\x1b]0;pwned\x07evil\x1b[31m"
        await wait_until(pilot, lambda: "evil" in shown(), what="the hostile name")
        assert "\x1b" not in shown() and "\x07" not in shown()
