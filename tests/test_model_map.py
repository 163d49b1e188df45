"""Which GPU process is which model: process -> container -> port -> endpoint -> model."""

from __future__ import annotations

from sparktui.services.endpoints import Endpoint, PsContainer, device_spec, parse_docker_ps_rows
from sparktui.services.model_directory import ModelDirectory
from sparktui.services.model_map import model_rows
from sparktui.services.telemetry import GpuProcess

CID = "3f2a9c0d1e4b" + "0" * 52


def endpoint(port: int, *models: str, kind: str = "openai", note: str | None = None):
    return Endpoint(device_spec("spark", port, note=note), tuple(models), kind)


def process(pid: int, name: str, container_id: str | None = None, command: str = ""):
    return GpuProcess(pid, "GPU-0", 0, name, 20480.0, command=command,
                      container_id=container_id)


def test_container_process_to_model_and_native_ollama_and_leftovers():
    ps = parse_docker_ps_rows(
        '{"ID":"3f2a9c0d1e4b","Names":"vllm-qwen","Image":"nvcr.io/nvidia/vllm:26.05-py3",'
        '"Ports":"127.0.0.1:8000->8000/tcp","Networks":"bridge"}\n'
        '{"ID":"aaaabbbbcccc","Names":"webui","Image":"open-webui","Ports":"","Networks":"x"}\n'
        'not json\n')
    assert ps[0] == PsContainer("3f2a9c0d1e4b", "vllm-qwen", "nvcr.io/nvidia/vllm:26.05-py3",
                                (8000,))
    endpoints = [endpoint(8000, "Qwen/Qwen3-8B"), endpoint(11434, "gpt-oss:20b", kind="ollama"),
                 endpoint(30000, "ggml-org/gpt-oss-20b-GGUF")]
    rows = model_rows("spark", [process(4242, "python3", CID, "vllm serve Qwen/Qwen3-8B"),
                                process(777, "/usr/local/bin/ollama", None, "ollama runner"),
                                process(99, "python3")], ps, endpoints)
    by_pid = {r.pid: r for r in rows}
    assert by_pid[4242].container == "vllm-qwen" and by_pid[4242].port == 8000
    assert by_pid[4242].models == ("Qwen/Qwen3-8B",)
    assert by_pid[777].container is None and by_pid[777].models == ("gpt-oss:20b",)
    assert by_pid[99].models == () and by_pid[99].model_text == "—"  # unknown stays unknown
    leftover = [r for r in rows if r.pid is None]  # llama.cpp without a GPU process seen
    assert [(r.port, r.models) for r in leftover] == [(30000, ("ggml-org/gpt-oss-20b-GGUF",))]

    directory = ModelDirectory()
    directory.update("spark", rows)
    assert directory.for_pid("spark", 4242).describe() == \
        "container vllm-qwen · :8000 · Qwen/Qwen3-8B"
    assert directory.for_container("spark", CID).models == ("Qwen/Qwen3-8B",)
    assert directory.for_pid("other", 4242) is None
