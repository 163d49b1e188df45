"""The simulated Spark's file system: /proc-, /sys-, /etc- and home files under one root.

The product's scripts read their files under `$SPARKTUI_ROOT` (empty on a real
device), so a real `sh` running them on the simulated device reads what is here:
the fixed files of `rootfs/` (DGX OS 7's /etc, the memory levers, the ConnectX-7
ports' link state, and in bin/ the tools that print fixed answers), the files
written once (the ConnectX-7 ports, the models in the
home), and the moving ones (/proc/stat, meminfo, thermal zones, PSI, buddyinfo,
power rails, the GPU processes' /proc entries, the GPU model's reading that
`nvidia-smi` prints), rewritten on every `refresh()`, each replaced atomically
so a reader never sees half a file. The levers work the same way round: a
script writes 3 into proc/sys/vm/drop_caches, or `kill` appends a pid to its
request file (sim.device.standin: bin/nvidia-smi, docker and kill), and the next
refresh acts on it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shlex
import shutil
import sys
import threading
from pathlib import Path

from sparktui.sim.device import standin
from sparktui.sim.device.gpu_model import NCPU, THERMAL_ZONES, SimDevice

KERNEL_RELEASE = "6.17.0-1029-nvidia"
USER = "spark"
ROOTFS = Path(__file__).with_name("rootfs")
# ConnectX-7: two RDMA ports; the first is cabled and ACTIVE, the second DOWN
IB_DEVICES = (("rocep1s0f0", "enp1s0f0np0"), ("rocep1s0f1", "enp1s0f1np1"))
RAIL_WATTS = {"sys_total": 38.0, "soc_pkg": 14.0, "cpu_gpu": 9.0, "gpu": 0.0,
              "dc_input": 44.0}  # plus the GPU's draw; then the pl1 and pl2 limits
SPBM_HWMON = "sys/class/hwmon/hwmon3"
DOWNLOAD_BYTES_S = 40_000_000  # how fast the download in progress grows
# The models on disk: (source, name, shard sizes, days since last use, config.json).
# The Llama is what the seeded vLLM container mounts (sim.docker.seed), so it is in use;
# Qwen2.5-0.5B is the deploy presets' model, which the deploy form weighs for real.
MODELS = (
    ("hf", "meta-llama/Llama-3.1-8B-Instruct",
     (4_976_698_672, 5_000_005_120, 4_915_916_176, 1_168_138_808), 0.02,
     {"architectures": ["LlamaForCausalLM"], "num_hidden_layers": 32, "num_attention_heads": 32,
      "num_key_value_heads": 8, "hidden_size": 4096, "head_dim": 128,
      "max_position_embeddings": 131072, "torch_dtype": "bfloat16"}),
    ("hf", "Qwen/Qwen2.5-7B-Instruct",
     (3_945_441_440, 3_864_726_320, 3_864_726_424, 3_556_377_672), 9.0,
     {"architectures": ["Qwen2ForCausalLM"], "num_hidden_layers": 28, "num_attention_heads": 28,
      "num_key_value_heads": 4, "hidden_size": 3584, "max_position_embeddings": 32768,
      "torch_dtype": "bfloat16"}),
    # MLA: the KV cache is the compressed latent (kv_lora_rank) plus the RoPE key
    ("hf", "deepseek-ai/DeepSeek-V2-Lite-Chat",
     (8_589_934_592, 8_589_934_592, 8_589_934_592, 5_634_244_608), 41.0,
     {"architectures": ["DeepseekV2ForCausalLM"], "num_hidden_layers": 27,
      "num_attention_heads": 16, "num_key_value_heads": 16, "hidden_size": 2048,
      "kv_lora_rank": 512, "qk_rope_head_dim": 64, "qk_nope_head_dim": 128, "v_head_dim": 128,
      "torch_dtype": "bfloat16"}),
    ("hf", "Qwen/Qwen3-30B-A3B", (3_998_893_112,), 0.0,
     {"num_hidden_layers": 48, "num_attention_heads": 32, "num_key_value_heads": 4,
      "head_dim": 128, "hidden_size": 2048}),
    ("hf", "Qwen/Qwen2.5-0.5B-Instruct", (988_097_824,), 1.0,
     {"architectures": ["Qwen2ForCausalLM"], "num_hidden_layers": 24, "num_attention_heads": 14,
      "num_key_value_heads": 2, "hidden_size": 896, "max_position_embeddings": 32768,
      "torch_dtype": "bfloat16"}),
    ("gguf", "gpt-oss-20b-mxfp4.gguf", (12_109_566_560,), 3.0, None),
)
#: a download in progress: its next shard grows from this size (see grow_download)
DOWNLOADING, DOWNLOAD_FROM = "Qwen/Qwen3-30B-A3B", 1_200_000_000


def _sha(*parts: object) -> str:
    return hashlib.sha256(" ".join(map(str, parts)).encode()).hexdigest()


def _hub_folder(home: Path, name: str) -> Path:
    return home / ".cache/huggingface/hub" / ("models--" + name.replace("/", "--"))


def _sparse(path: Path, size: int, when: float) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "ab") as fh:
        fh.truncate(size)  # a hole: the apparent size, no blocks
    os.utime(path, (when, when))


def seed_models(home: Path, now: float) -> None:
    """Every model under `home` as the Hugging Face hub (or llama.cpp) leaves it: refs/main,
    blobs, snapshots/REV/* -> ../../blobs/SHA; weights as sparse files of their true size,
    dated by their last use."""
    for source, name, shards, days, config in MODELS:
        used = now - days * 86_400
        if source == "gguf":
            _sparse(home / "models" / name, shards[0], used)
            continue
        path = _hub_folder(home, name)
        snapshot = path / "snapshots" / _sha(name, "rev")[:40]
        snapshot.mkdir(parents=True, exist_ok=True)
        (path / "refs").mkdir(exist_ok=True)
        (path / "refs" / "main").write_text(snapshot.name)
        files = {f"model-{i + 1:05d}-of-{len(shards):05d}.safetensors": _sha(name, i)
                 for i in range(len(shards))}
        for i, blob in enumerate(files.values()):
            _sparse(path / "blobs" / blob, shards[i], used)
        blob = path / "blobs" / _sha(name, "config")
        blob.write_text(json.dumps(config))
        os.utime(blob, (used, used))
        for link, blob_name in {**files, "config.json": blob.name}.items():
            if not (snapshot / link).is_symlink():
                (snapshot / link).symlink_to(f"../../blobs/{blob_name}")
    grow_download(home, now, now)


def grow_download(home: Path, started: float, now: float) -> None:
    """The unfinished blob of the download in progress, at the size it has reached by now."""
    blobs = _hub_folder(home, DOWNLOADING) / "blobs"
    if blobs.is_dir():  # not when the user deleted the model
        _sparse(blobs / f"{_sha(DOWNLOADING, 'next')}.incomplete",
                DOWNLOAD_FROM + int((now - started) * DOWNLOAD_BYTES_S), now)


def ib_port(hostname: str, index: int) -> dict[str, str]:
    """The addresses of ConnectX-7 port `index` (its counters move: see refresh)."""
    a, b = ((sum(hostname.encode()) * 31 + salt * 17 + len(hostname)) % 250 + 2
            for salt in (1, 2 + index))
    eui = f"4ebb:47ff:fe{a:02x}:{b:02x}{index:02x}"
    return {"mac": f"4c:bb:47:{a:02x}:{b:02x}:{index:02x}", "ipv4": f"169.254.{a}.{b}",
            "ipv6": f"fe80::{eui}", "gid": f"fe80:0000:0000:0000:{eui}",
            "gid4": f"0000:0000:0000:0000:0000:ffff:a9fe:{a:02x}{b:02x}"}


class DeviceRoot:
    """The directory tree one simulated device's shell sees under $SPARKTUI_ROOT."""

    def __init__(self, device: SimDevice, path: str) -> None:
        self.device, self.path = device, Path(path)
        self.home = self.path / "home" / USER
        self._gpu_pids: set[int] = set()
        self._written: dict[str, str] = {}
        self._refreshing = threading.Lock()  # a refresh's thread outlives a cancelled caller
        self._started = device.wall_time()
        shutil.copytree(ROOTFS, self.path, dirs_exist_ok=True)
        python, tools = shlex.quote(sys.executable), shlex.quote(standin.__file__)
        for name in standin.TOOLS:  # -S: no site-packages to import, it starts in ~30 ms
            self.write(f"bin/{name}", f'#!/bin/sh\nexec {python} -S {tools} {name} "$@"\n')
        for entry in (self.path / "bin").iterdir():
            entry.chmod(0o755)
        files = {"etc/hostname": device.hostname + "\n",
                 "proc/sys/kernel/osrelease": KERNEL_RELEASE + "\n"}
        for zone, (name, _) in enumerate(THERMAL_ZONES):
            files[f"sys/class/thermal/thermal_zone{zone}/type"] = name + "\n"
        for index, (rdma, netdev) in enumerate(IB_DEVICES):  # state and rate: in rootfs/
            port, base = ib_port(device.hostname, index), f"sys/class/infiniband/{rdma}"
            files[f"{base}/device/net/{netdev}/address"] = port["mac"] + "\n"
            for gid, value in enumerate((port["gid"], port["gid"], port["gid4"], port["gid4"])):
                files[f"{base}/ports/1/gids/{gid}"] = value + "\n"
        for rail, label in enumerate([*RAIL_WATTS, "pl1", "pl2"], start=1):
            files[f"{SPBM_HWMON}/power{rail}_label"] = label + "\n"
        for relative, text in files.items():
            self.write(relative, text)
        seed_models(self.home, self._started)
        (self.path / "var" / "run").mkdir(parents=True, exist_ok=True)

    def environment(self, user: str = USER, term: str | None = None) -> dict[str, str]:
        """The login environment of `user` (nothing of this machine's); HOME is the same
        for every login name."""
        env = {"PATH": f"{self.path / 'bin'}:/usr/local/bin:/usr/bin:/bin",
               "HOME": str(self.home), "USER": user, "LOGNAME": user, "SHELL": "/bin/sh",
               "LANG": "C.UTF-8", "SPARKTUI_ROOT": str(self.path)}
        return env | ({"TERM": term} if term else {})

    def write(self, relative: str, text: str) -> None:
        if self._written.get(relative) == text:
            return  # a rename costs more than everything else a refresh does
        if not self.path.is_dir():
            return  # removed: a late writer (the engine's events) must not make it again
        self._written[relative] = text
        path = self.path / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        temp = path.with_name(f".{path.name}.new")
        temp.write_text(text, encoding="utf-8")
        os.replace(temp, path)

    def unlink(self, relative: str) -> None:
        self._written.pop(relative, None)
        (self.path / relative).unlink(missing_ok=True)

    def remove(self) -> None:
        with self._refreshing:  # not while a refresh writes: it would leave its files behind
            shutil.rmtree(self.path, ignore_errors=True)

    def refresh(self) -> None:
        """Write the current state; act on a lever pulled since (blocking: a few small files)."""
        with self._refreshing:
            if self.path.is_dir():  # not removed
                self._refresh()

    def _refresh(self) -> None:
        device, memory = self.device, self.device.memory
        for lever in ("drop_caches", "compact_memory"):  # buddyinfo follows MemFree
            path = self.path / "proc/sys/vm" / lever
            if path.read_text().strip() not in ("", "0"):
                if lever == "drop_caches":
                    memory.drop_caches()
                path.write_text("0\n")
        self._act_on_kills()
        now = device.clock()
        meminfo = device.meminfo(now)
        kb = {line.split(":")[0]: int(line.split()[1]) for line in meminfo.splitlines()}
        memory.check_wedge(kb["MemAvailable"])
        some, full = memory.pressure(kb["MemAvailable"], kb["MemTotal"])
        self.write("proc/pressure/memory", "".join(
            f"{kind} avg10={v:.2f} avg60={v * 0.7:.2f} avg300={v * 0.3:.2f} total=0\n"
            for kind, v in (("some", some), ("full", full))))
        self.write("proc/buddyinfo", "".join(f"{line}\n" for line in
                                             memory.buddyinfo(kb["MemFree"])))
        self.write("proc/sys/kernel/random/boot_id", memory.boot_id + "\n")
        self.write("proc/meminfo", meminfo)
        self.write("proc/loadavg", device.loadavg(now))
        for zone, (_, milli) in enumerate(device.thermal(now)):
            self.write(f"sys/class/thermal/thermal_zone{zone}/temp", f"{milli}\n")
        reading = device.nvidia_smi_reading(now)
        gpu_w = float(reading["gpus"][0]["power.draw"])
        for rail, watts in enumerate([gpu_w + w for w in RAIL_WATTS.values()] + [140.0, 240.0],
                                     start=1):
            self.write(f"{SPBM_HWMON}/power{rail}_input", f"{int(watts * 1e6)}\n")
        words = int(device.uptime_s(now) * 3.1e6)  # ~12 MB/s of chatter on the cabled port
        counters = f"sys/class/infiniband/{IB_DEVICES[0][0]}/ports/1/counters"  # (DOWN one: 0)
        self.write(f"{counters}/port_rcv_data", f"{words}\n")
        self.write(f"{counters}/port_xmit_data", f"{int(words * 0.93)}\n")
        self._write_network()
        grow_download(self.home, self._started, device.wall_time(now))
        self._write_processes(now)
        self.write(standin.READING, json.dumps(reading))  # its processes' /proc files first
        self.write("var/log/journal-previous", "".join(
            f"2026-01-01T00:00:{i % 60:02d}+0000 {device.hostname} {line}\n"
            for i, line in enumerate(memory.previous)))
        # last, so a reader's uptime is never newer than the jiffies it pairs with
        self.write("proc/stat", device.proc_stat(now))
        up = device.uptime_s(now)
        self.write("proc/uptime", f"{up:.2f} {up * NCPU * 0.93:.2f}\n")

    def _act_on_kills(self) -> None:
        """End the processes `kill` asked to end since (sim.device.standin checked them)."""
        taken = self.path / "sim/.kills-taken"
        with contextlib.suppress(FileNotFoundError):  # moved aside: a new kill starts a new file
            os.replace(self.path / standin.KILLS, taken)
            for pid in taken.read_text(encoding="utf-8").split():
                self.device.kill(int(pid))

    def _write_network(self) -> None:
        """What `ip -o addr` and `ip neigh` print (bin/ip reads these)."""
        lines = ["1: lo    inet 127.0.0.1/8 scope host lo\\       valid_lft forever",
                 "2: enP7s7    inet 192.168.1.41/24 brd 192.168.1.255 scope global enP7s7\\"]
        for index, (_, netdev) in enumerate(IB_DEVICES):
            port, n = ib_port(self.device.hostname, index), 3 + index
            lines += [f"{n}: {netdev}    inet {port['ipv4']}/16 brd 169.254.255.255 scope link "
                      f"{netdev}\\       valid_lft forever preferred_lft forever",
                      f"{n}: {netdev}    inet6 {port['ipv6']}/64 scope link \\       "
                      "valid_lft forever preferred_lft forever"]
        self.write("etc/ip-addr", "\n".join(lines) + "\n")
        neigh = ["192.168.1.1 dev enP7s7 lladdr 00:11:22:33:44:55 REACHABLE"]
        if self.device.cx7_peer is not None:
            theirs = ib_port(self.device.cx7_peer.hostname, 0)
            neigh.append(f"{theirs['ipv4']} dev {IB_DEVICES[0][1]} lladdr {theirs['mac']} "
                         "REACHABLE")
        self.write("etc/ip-neigh", "\n".join(neigh) + "\n")

    def _write_processes(self, now: float) -> None:
        """/proc/PID/{status,cgroup,cmdline} of the GPU's compute processes."""
        apps = {p.pid: p for p in self.device.compute_apps(now)}
        for pid in self._gpu_pids - set(apps):
            shutil.rmtree(self.path / "proc" / str(pid), ignore_errors=True)
        for pid, process in apps.items():
            if pid in self._gpu_pids:
                continue
            uid = {"root": 0, "ollama": 998}.get(process.user, 1000)
            if process.container_id:  # Docker with systemd, as on DGX OS
                scope = f"system.slice/docker-{process.container_id}.scope"
            elif process.user == "ollama":
                scope = "system.slice/ollama.service"
            else:
                scope = f"user.slice/user-{uid}.slice/session-1.scope"
            self.write(f"proc/{pid}/status", f"Name:\t{process.exe.rsplit('/', 1)[-1][:15]}\n"
                       f"Pid:\t{pid}\nUid:\t{uid}\t{uid}\t{uid}\t{uid}\n")
            self.write(f"proc/{pid}/cgroup", f"0::/{scope}\n")
            self.write(f"proc/{pid}/cmdline", "\0".join(process.args.split(" ")) + "\0")
        self._gpu_pids = set(apps)

