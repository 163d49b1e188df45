"""The pure parts of the Containers feature: inspect data, problems, logs, presets, secrets."""

from __future__ import annotations

import os
import socket
import subprocess

import keyring
import keyring.errors
import pytest
from jaraco.classes import properties
from keyring.backend import KeyringBackend
from keyring.backends import fail

from sparktui.core.device import DeviceSpec
from sparktui.core.docker_info import (
    ContainerInfo,
    ContainerStats,
    api_too_old,
    format_age,
    format_cpu,
    format_memory,
    format_ports,
    gpu_request,
    matches,
    parse_docker_time,
    short_port,
    sort_key,
    stats_from_sample,
)
from sparktui.core.docker_logs import LineSplitter, short_timestamp, to_log_line
from sparktui.core.docker_presets import (
    PRESETS,
    PullProgress,
    SpecError,
    create_kwargs,
    parse_env,
    plan_volumes,
    preset,
    spec_from_preset,
    split_image,
    validate,
)
from sparktui.core.docker_problems import (
    Probe,
    ProblemKind,
    classify,
    diagnose_command,
    is_gpu_runtime_error,
    parse_probe,
)
from sparktui.services.containers import ContainerService, shell_argv
from sparktui.services.link import DeviceLink
from sparktui.services.secrets import SecretStore, SecretsUnavailable


def inspect(**overrides):
    attrs = {
        "Id": "a" * 64, "Name": "/vllm", "Path": "vllm", "Args": ["serve", "[bold]m[/]"],
        "State": {"Status": "running", "ExitCode": 0,
                  "StartedAt": "2026-11-28T20:00:00.123456789Z",
                  "FinishedAt": "0001-01-01T00:00:00Z", "Health": {"Status": "healthy"}},
        "Config": {"Image": "nvcr.io/nvidia/vllm:25.11-py3", "Labels": {"k": "[red]v[/]"}},
        "HostConfig": {"NetworkMode": "default",
                       "DeviceRequests": [{"Driver": "", "Count": -1,
                                           "Capabilities": [["gpu"]]}]},
        "NetworkSettings": {"Ports": {"8000/tcp": [{"HostIp": "127.0.0.1",
                                                    "HostPort": "8000"}]}},
    }
    attrs.update(overrides)
    return attrs


def test_container_info_from_inspect():
    info = ContainerInfo.from_inspect(inspect())
    assert (info.name, info.image, info.state_text()) == (
        "vllm", "nvcr.io/nvidia/vllm:25.11-py3", "running · healthy")
    assert info.ports == ("127.0.0.1:8000->8000/tcp",)
    assert info.gpu == "all"
    assert info.command == "vllm serve [bold]m[/]"
    assert info.labels == (("k", "[red]v[/]"),)
    assert info.uptime_text(info.started_at + 125) == "2m"
    dead = ContainerInfo.from_inspect(inspect(State={
        "Status": "exited", "ExitCode": 137, "OOMKilled": True,
        "StartedAt": "2026-11-28T20:00:00Z", "FinishedAt": "2026-11-28T20:01:00Z"}))
    assert dead.state_text() == "exited (137, OOM)"
    assert dead.uptime_text(dead.finished_at + 7200) == "2h00m ago"
    # a 50-column side pane: short words that still tell the container's health
    assert (info.state_text(compact=True), dead.state_text(compact=True)) == (
        "healthy", "exit 137 OOM")


def test_side_pane_figures_are_short():
    def stats(cpu: float | None, mem: float | None) -> ContainerStats:
        return ContainerStats(cpu, mem, None)

    assert [format_memory(stats(None, m), compact=True)
            for m in (None, 512, 12_288, 806_000_000, 6.4 * 2**30, 12.6 * 2**30, 3 * 2**40)] == \
        ["-", "512B", "12K", "769M", "6.4G", "13G", "3.0T"]
    assert format_memory(stats(None, 806_000_000)) == "768.7 MiB"
    assert (format_cpu(stats(186.34, None), compact=True), format_cpu(stats(186.34, None))) == \
        ("186%", "186.3%")


def test_times_ages_and_versions():
    assert parse_docker_time("0001-01-01T00:00:00Z") is None
    assert parse_docker_time("2026-11-28T20:00:00+01:00") == \
        parse_docker_time("2026-11-28T19:00:00Z")
    assert parse_docker_time("garbage") is None
    assert [format_age(s) for s in (None, 5, 61, 3600 * 3 + 60, 3600 * 30, 86400 * 9)] == \
        ["-", "5s", "1m", "3h01m", "1d", "9d"]
    assert api_too_old("1.39") and not api_too_old("1.40") and not api_too_old("1.51")


def test_ports_and_gpus():
    both = {"NetworkSettings": {"Ports": {
        "80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}, {"HostIp": "::", "HostPort": "8080"}],
        "9000/tcp": None}}}
    assert format_ports(both) == ("0.0.0.0:8080->80/tcp", "9000/tcp")
    stopped = {"NetworkSettings": {"Ports": {}},
               "HostConfig": {"PortBindings": {"8000/tcp": [{"HostIp": "", "HostPort": "1"}]}}}
    assert format_ports(stopped) == ("0.0.0.0:1->8000/tcp",)
    assert format_ports({"HostConfig": {"NetworkMode": "host"}}) == ("host network",)
    request = {"Count": 0, "DeviceIDs": ["0", "1"], "Capabilities": [["gpu", "utility"]]}
    assert gpu_request({"HostConfig": {"DeviceRequests": [request]}}) == "0,1"
    assert gpu_request({"HostConfig": {"DeviceRequests": None}}) == ""


def test_stats_cpu_from_precpu_or_the_previous_sample():
    sample = {"cpu_stats": {"cpu_usage": {"total_usage": 3_000}, "system_cpu_usage": 20_000,
                            "online_cpus": 4},
              "precpu_stats": {"cpu_usage": {"total_usage": 1_000}, "system_cpu_usage": 10_000},
              "memory_stats": {"usage": 500, "limit": 1000, "stats": {"inactive_file": 100}}}
    stats = stats_from_sample(sample, None)
    assert stats.cpu_percent == pytest.approx(80.0)
    assert (stats.mem_used, stats.mem_limit) == (400, 1000)
    one_shot = dict(sample, precpu_stats={"cpu_usage": {"total_usage": 0}})
    assert stats_from_sample(one_shot, None).cpu_percent is None
    previous = ContainerStats(None, None, None, cpu_total=2_000, system_total=15_000)
    assert stats_from_sample(one_shot, previous).cpu_percent == pytest.approx(80.0)


def test_filter_and_sort():
    a = ContainerInfo.from_inspect(inspect())
    b = ContainerInfo.from_inspect(inspect(Id="b" * 64, Name="/alpha"))
    assert matches(a, "vllm healthy") and matches(a, "K=[RED]") and not matches(a, "ollama")
    rows = sorted([a, b], key=lambda i: sort_key("name", i, None, 0))
    assert [r.name for r in rows] == ["alpha", "vllm"]
    busy = ContainerStats(50.0, 1.0, None)
    rows = sorted([a, b], key=lambda i: sort_key("cpu", i, busy if i is b else None, 0))
    assert rows[0] is b  # unknown figures sort last


# -- problems -------------------------------------------------------------------------------

def run_probe(path: str, env_path: str = "/usr/bin:/bin") -> Probe | None:
    out = subprocess.run(["/bin/sh", "-c", diagnose_command(path)], capture_output=True,
                         text=True, env={"PATH": env_path}).stdout
    return parse_probe(out)


def test_probe_on_real_paths(tmp_path):
    listening = tmp_path / "d.sock"
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(listening))
        probe = run_probe(str(listening))
    assert probe is not None and (probe.socket, probe.access) == ("socket", "ok")
    assert probe.user == "root"
    assert run_probe(str(tmp_path / "missing")).socket == "missing"
    regular = tmp_path / "file"
    regular.write_text("")
    assert run_probe(str(regular)).socket == "other"
    assert run_probe(str(tmp_path / "x"), env_path="/nonexistent").docker_cli is False


@pytest.mark.parametrize(("probe", "kind", "words"), [
    (Probe("missing", "-", False, "-", "bob"), ProblemKind.NOT_INSTALLED, "not installed"),
    (Probe("missing", "-", True, "-", "bob"), ProblemKind.DAEMON_DOWN, "does not exist"),
    (Probe("socket", "ok", True, "docker", "bob"), ProblemKind.DAEMON_DOWN, "nothing answers"),
    (Probe("socket", "denied", True, "docker", "bob"), ProblemKind.PERMISSION,
     "sudo usermod -aG docker bob"),
    (Probe("other", "-", True, "-", "bob"), ProblemKind.OTHER, "not a socket"),
    (None, ProblemKind.OTHER, "did not answer"),
])
def test_classify(probe, kind, words):
    problem = classify("spark", "/var/run/docker.sock", probe, "Connection aborted")
    assert problem.kind is kind and words in problem.message


def test_gpu_runtime_errors_are_recognised():
    assert is_gpu_runtime_error('could not select device driver "" with capabilities: [[gpu]]')
    assert is_gpu_runtime_error("Unknown or invalid runtime name: nvidia")
    assert not is_gpu_runtime_error("port is already allocated")


# -- logs -------------------------------------------------------------------------------------

def test_line_splitter_bounds_lines():
    splitter = LineSplitter(max_bytes=8)
    assert splitter.feed(b"ab") == []
    assert splitter.feed(b"c\r\nde\nf") == [b"abc", b"de"]
    assert splitter.feed(b"0123456789") == [b"f0123456"]  # cut at 8 bytes
    assert splitter.feed(b"\n") == [b"789"]
    assert splitter.feed(b"\xff\x00tail") == []
    assert splitter.flush() == [b"\xff\x00tail"] and splitter.flush() == []


def test_log_lines_and_timestamps():
    line = to_log_line(b"2026-11-28T20:48:13.365673077Z \x1b[31mhi\x1b[0m \xff")
    assert line.timestamp == "2026-11-28T20:48:13.365673077Z"
    assert line.text == "\x1b[31mhi\x1b[0m \ufffd"
    assert to_log_line(b"no stamp").timestamp == ""
    assert short_timestamp(line.timestamp) == "2026-11-28 20:48:13.365"


# -- presets and deploy specs ----------------------------------------------------------------

def test_every_preset_makes_a_valid_spec():
    titles = {p.title for p in PRESETS}
    assert {"Ollama", "vLLM", "NVIDIA NIM", "SGLang", "llama.cpp server", "TensorRT-LLM",
            "Open WebUI"} <= titles
    for item in PRESETS:
        spec = spec_from_preset(item)
        validate(spec)
        kwargs = create_kwargs(spec, home="/home/u")
        assert kwargs["labels"]["io.sparktui.deploy"] == item.key
        assert kwargs["device_requests"] == [{"count": -1, "capabilities": [["gpu"]]}]
        if item.network_host:
            assert kwargs["network_mode"] == "host" and "ports" not in kwargs
        else:
            assert kwargs["ports"] == {f"{item.container_port}/tcp":
                                       ("127.0.0.1", item.host_port)}
    trt = create_kwargs(spec_from_preset(preset("trtllm")), home="/h")
    assert trt["ipc_mode"] == "host"
    assert trt["ulimits"] == [{"name": "memlock", "soft": -1, "hard": -1},
                              {"name": "stack", "soft": 67108864, "hard": 67108864}]
    assert trt["environment"]["MODEL_HANDLE"] == preset("trtllm").model
    nim = create_kwargs(spec_from_preset(preset("nim")), home="/h",
                        secret_values={"NGC_API_KEY": "k"})
    assert nim["shm_size"] == "16g" and nim["environment"]["NGC_API_KEY"] == "k"
    assert nim["volumes"] == ["/h/.cache/nim:/opt/nim/.cache",
                              "/h/.local/share/nim/workspace:/opt/nim/workspace"]


def test_presets_follow_the_playbooks_and_expose_metrics():
    """Images and ports as NVIDIA's DGX Spark playbooks (mid-2026) run them."""
    assert preset("vllm").image == "nvcr.io/nvidia/vllm:26.05-py3"
    assert preset("trtllm").image.endswith(":1.3.0rc13")
    assert "--enable-metrics" in spec_from_preset(preset("sglang")).command.split()
    llama = spec_from_preset(preset("llamacpp"))
    assert "--metrics" in llama.command.split() and "--port 30000" in llama.command
    assert (llama.container_port, llama.host_port) == (30000, 30000)


def test_spec_fields_are_checked():
    assert plan_volumes(["~/m:/m:ro", "named:/data", "$HOME/x:/x"], "/home/u/").host_dirs == \
        ("/home/u/m", "/home/u/x")
    with pytest.raises(SpecError, match="volumes"):
        plan_volumes(["relative"], "/h")
    assert parse_env('A=1 B="two words"') == {"A": "1", "B": "two words"}
    with pytest.raises(SpecError, match="environment"):
        parse_env("NOEQUALS")
    spec = spec_from_preset(preset("vllm"))
    spec.name = "bad name"
    with pytest.raises(SpecError, match="name"):
        validate(spec)
    assert split_image("nvcr.io:5000/a/b:1.0") == ("nvcr.io:5000/a/b", "1.0")
    assert split_image("ollama/ollama") == ("ollama/ollama", "latest")
    assert split_image("a@sha256:00") == ("a@sha256:00", None)


def test_pull_progress_counts_bytes_and_layers():
    progress = PullProgress()
    for event in (
        {"status": "Pulling from nvidia/vllm", "id": "25.11-py3"},
        {"status": "Pulling fs layer", "id": "l1"}, {"status": "Pulling fs layer", "id": "l2"},
        {"status": "Already exists", "id": "l3"},
        {"status": "Downloading", "id": "l1", "progressDetail": {"current": 50, "total": 100}},
        {"status": "Downloading", "id": "l2", "progressDetail": {"current": 10, "total": 300}},
        {"status": "Download complete", "id": "l1"}, {"status": "Pull complete", "id": "l1"},
        {"status": "Digest: sha256:abc"},
    ):
        progress.update(event)
    assert (progress.layers_done, progress.layers_total) == (2, 3)
    assert (progress.bytes_done, progress.bytes_total) == (110, 400)
    assert progress.digest == "sha256:abc"
    assert progress.describe() == "2/3 layers · 110 B of 400 B"
    progress.update({"error": "unauthorized: authentication required"})
    assert progress.error.startswith("unauthorized")


# -- secrets ----------------------------------------------------------------------------------

class MemoryKeyring(KeyringBackend):
    # Every KeyringBackend subclass joins keyring's registry: a plain priority
    # would make later tests' backend detection pick this test double.
    @properties.classproperty
    def priority(cls) -> float:
        raise RuntimeError("a test double, set explicitly, never detected")

    def __init__(self) -> None:
        super().__init__()
        self.values: dict[tuple[str, str], str] = {}

    def get_password(self, service, username):
        return self.values.get((service, username))

    def set_password(self, service, username, password):
        self.values[(service, username)] = password

    def delete_password(self, service, username):
        if (service, username) not in self.values:  # as real backends do
            raise keyring.errors.PasswordDeleteError("not found")
        del self.values[(service, username)]


@pytest.fixture
def backend(request):
    saved = keyring.get_keyring()
    chosen = request.param()
    keyring.set_keyring(chosen)
    yield chosen
    keyring.set_keyring(saved)


@pytest.mark.parametrize("backend", [MemoryKeyring], indirect=True)
async def test_secrets_keyring_then_environment(backend):
    store = SecretStore(environ={})
    assert (await store.lookup("HF_TOKEN")).source is None
    await store.set("HF_TOKEN", "hf_abc")
    found = await store.lookup("HF_TOKEN")
    assert (found.value, found.source) == ("hf_abc", "keyring")
    assert "hf_abc" not in repr(found)
    assert await store.get("HF_TOKEN") == "hf_abc"
    env = SecretStore(environ={"HF_TOKEN": "from-env"})
    assert (await env.lookup("HF_TOKEN")).source == "environment"
    await store.delete("HF_TOKEN")
    await store.delete("HF_TOKEN")  # twice: nothing to forget is fine
    assert await store.get("HF_TOKEN") is None


@pytest.mark.parametrize("backend", [fail.Keyring], indirect=True)
async def test_no_keyring_backend_is_said_plainly(backend):
    store = SecretStore(environ={})
    found = await store.lookup("NGC_API_KEY")
    assert found.value is None and "no backend" in found.keyring_problem
    assert await store.problem() is not None
    with pytest.raises(SecretsUnavailable, match=r"export NGC_API_KEY=\.\.\."):
        await store.set("NGC_API_KEY", "x")


# -- the shell command --------------------------------------------------------------------------

def test_shell_command_for_ssh_and_local_devices():
    spec = DeviceSpec(name="s", host="spark.lan", user="nv", port=2222,
                      identity_file="~/.ssh/k", proxy_jump="jump")
    service = ContainerService(DeviceLink(spec, connector=None), socket_path="/run/d.sock")
    assert shell_argv(service, "abc") == [
        "ssh", "-t", "-p", "2222", "-l", "nv", "-i", os.path.expanduser("~/.ssh/k"),
        "-J", "jump", "spark.lan", "--", "docker -H unix:///run/d.sock exec -it abc sh"]
    local = ContainerService(DeviceLink(DeviceSpec.parse("local"), connector=None))
    assert shell_argv(local, "abc", "bash") == ["docker", "exec", "-it", "abc", "bash"]


@pytest.mark.parametrize(("spec", "short"), [
    ("0.0.0.0:8000->8000/tcp", "8000"),  # everywhere, same port, tcp: just the port
    ("0.0.0.0:12000->8080/tcp", "12000→8080"),
    ("127.0.0.1:8001->80/tcp", "127.0.0.1:8001→80"),  # loopback only: that matters
    ("[::1]:80->80/tcp", "[::1]:80"),
    ("53/udp", "53/udp"),  # exposed, not published
    ("8000/tcp", "8000"),
    ("host network", "host network"),
    ("0.0.0.0:?->80/tcp", "?→80"),
])
def test_short_port_keeps_what_says_where_to_connect(spec: str, short: str) -> None:
    # 80x24 shows ports in these forms (ui/containers/columns.py); the detail line in full
    assert short_port(spec) == short
