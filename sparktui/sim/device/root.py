"""The simulated Spark's file system: /proc-, /sys- and /etc-like files under one root.

The product's scripts read their files under `$SPARKTUI_ROOT` (empty on a real
device), so a real `sh` running them on the simulated device reads what this
module writes: static files once, the moving ones (/proc/stat, meminfo,
thermal zones, PSI, buddyinfo, power rails, the GPU processes' /proc entries)
on every `refresh()`, each replaced atomically so a reader never sees half a
file. The memory levers work the same way round: a script writes 3 into
proc/sys/vm/drop_caches and the next refresh acts on it.

`bin/` holds the stand-ins for what the host shares with this machine and must
not touch here: `nvidia-smi`, `docker` and `kill` ask the model
through the relay socket (sim.device.standin); the rest print fixed DGX OS answers.
Static text is modelled on DGX OS 7 (Ubuntu 24.04 on aarch64).
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from sparktui.sim.device import model_disk, standin
from sparktui.sim.device.gpu_model import NCPU, THERMAL_ZONES, SimDevice

KERNEL_RELEASE = "6.17.0-1029-nvidia"
USER = "spark"
UID = 1000
OS_RELEASE = """PRETTY_NAME="Ubuntu 24.04.3 LTS"
NAME="Ubuntu"
VERSION_ID="24.04"
VERSION="24.04.3 LTS (Noble Numbat)"
VERSION_CODENAME=noble
ID=ubuntu
ID_LIKE=debian
UBUNTU_CODENAME=noble
"""
DGX_RELEASE = """DGX_NAME="DGX Spark"
DGX_PRETTY_NAME="NVIDIA DGX Spark"
DGX_SWBUILD_DATE="2025-10-08-12-00-00"
DGX_SWBUILD_VERSION="7.2.3"
DGX_PLATFORM="DGX Spark"
DGX_OTA_VERSION="7.2.3"
"""
LSCPU = """Architecture:             aarch64
CPU(s):                   20
Vendor ID:                ARM
  Model name:             Cortex-X925
    Core(s) per socket:   10
    CPU max MHz:          3900.0000
  Model name:             Cortex-A725
    Core(s) per socket:   10
    CPU max MHz:          2808.0000
"""
DOCKER_VERSION = "28.3.3"
DISK_TOTAL_KB, DISK_USED_KB = 3_750_738_000, 412_861_440  # a 4 TB NVMe, formatted
# ConnectX-7: two RDMA ports; the first is cabled and ACTIVE, the second DOWN
IB_DEVICES = (("rocep1s0f0", "enp1s0f0np0"), ("rocep1s0f1", "enp1s0f1np1"))
RAIL_WATTS = {"sys_total": 38.0, "soc_pkg": 14.0, "cpu_gpu": 9.0, "gpu": 0.0,
              "dc_input": 44.0}  # plus the GPU's draw; pl1/pl2 are limits
SPBM_HWMON = "sys/class/hwmon/hwmon3"
PROCHOT = "sys/bus/platform/devices/NVDA8800:00/prochot"
ACTIONS = {"proc/sys/vm/drop_caches": "drop_caches", "proc/sys/vm/compact_memory": "compact"}

# Fixed answers: what these tools print on a Spark, the same every call.
_SCRIPTS = {
    "hostname": 'cat "$SPARKTUI_ROOT/etc/hostname"',
    "uname": f"""case "$*" in
  -srm) echo "Linux {KERNEL_RELEASE} aarch64" ;; -r) echo "{KERNEL_RELEASE}" ;;
  -m) echo aarch64 ;; -n) cat "$SPARKTUI_ROOT/etc/hostname" ;; *) echo Linux ;; esac""",
    "lscpu": f"cat <<'EOF'\n{LSCPU}EOF",
    "nproc": f"echo {NCPU}",
    "df": f"""echo 'Filesystem     1024-blocks      Used  Available Capacity Mounted on'
for a in "$@"; do case $a in -*) continue ;; esac
  echo "/dev/nvme0n1p2  {DISK_TOTAL_KB} {DISK_USED_KB} {DISK_TOTAL_KB - DISK_USED_KB} 12% /"
done""",
    # the model files are sparse: their apparent size is what a real du would count
    "du": '/usr/bin/du --apparent-size "$@" 2>/dev/null || /usr/bin/du "$@"',
    "ip": 'case "$*" in *neigh*) f=neigh ;; *) f=addr ;; esac; cat "$SPARKTUI_ROOT/etc/ip-$f"',
    "nvidia-ctk": "echo 'NVIDIA Container Toolkit CLI version 1.17.8'",
    "journalctl": """f=$SPARKTUI_ROOT/var/log/journal-previous
[ -s "$f" ] && exec cat "$f"
echo 'Data from the specified boot (-1) is not available: No such boot ID in journal' >&2
exit 1""",
    # the login name is the user's (uid 1000, in the docker group, as DGX OS sets it up)
    "whoami": 'echo "$USER"',
    "id": """case $1 in -u) echo 1000 ;; -un|-nu) echo "$USER" ;; -g) echo 1000 ;;
  -nG|-Gn) echo "$USER sudo docker" ;;
  *) echo "uid=1000($USER) gid=1000($USER) groups=1000($USER),27(sudo),988(docker)" ;; esac""",
    # the simulated user may sudo without a password
    "sudo": '[ "$1" = -n ] && shift; exec "$@"',
}
RELAYED = ("nvidia-smi", "docker", "kill")


def _host_byte(hostname: str, salt: int) -> int:
    return (sum(hostname.encode()) * 31 + salt * 17 + len(hostname)) % 250 + 2


def ib_port(hostname: str, index: int) -> dict[str, str]:
    """The addresses of ConnectX-7 port `index` (its counters move: see refresh)."""
    a, b = _host_byte(hostname, 1), _host_byte(hostname, 2 + index)
    eui = f"4ebb:47ff:fe{a:02x}:{b:02x}{index:02x}"
    return {"mac": f"4c:bb:47:{a:02x}:{b:02x}:{index:02x}", "ipv4": f"169.254.{a}.{b}",
            "ipv6": f"fe80::{eui}", "gid": f"fe80:0000:0000:0000:{eui}",
            "gid4": f"0000:0000:0000:0000:0000:ffff:a9fe:{a:02x}{b:02x}"}


class DeviceRoot:
    """The directory tree one simulated device's shell sees under $SPARKTUI_ROOT."""

    def __init__(self, device: SimDevice, path: str, relay_socket: str) -> None:
        self.device = device
        self.path = Path(path)
        self.relay_socket = relay_socket
        self._gpu_pids: set[int] = set()
        self._written: dict[str, str] = {}
        self._write_static()

    @property
    def home(self) -> Path:
        return self.path / "home" / USER

    def environment(self, user: str = USER, term: str | None = None) -> dict[str, str]:
        """The login environment of `user` (nothing of this machine's); HOME is the same
        for every login name."""
        env = {"PATH": f"{self.path / 'bin'}:/usr/local/bin:/usr/bin:/bin",
               "HOME": str(self.home), "USER": user, "LOGNAME": user, "SHELL": "/bin/sh",
               "LANG": "C.UTF-8", "SPARKTUI_ROOT": str(self.path),
               standin.SOCKET_ENV: self.relay_socket}
        if term:
            env["TERM"] = term
        return env

    # --- files ---------------------------------------------------------------------------
    def write(self, relative: str, text: str) -> None:
        if self._written.get(relative) == text:
            return  # a rename costs more than everything else a refresh does
        self._written[relative] = text
        path = self.path / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        temp = path.with_name(f".{path.name}.new")
        temp.write_text(text, encoding="utf-8")
        os.replace(temp, path)

    def _write_static(self) -> None:
        device = self.device
        files = {"etc/hostname": device.hostname + "\n", "etc/os-release": OS_RELEASE,
                 "etc/dgx-release": DGX_RELEASE,
                 "etc/passwd": f"root:x:0:0:root:/root:/bin/bash\n"
                               f"{USER}:x:{UID}:{UID}::/home/{USER}:/bin/bash\n"
                               "ollama:x:998:998::/usr/share/ollama:/bin/false\n",
                 "proc/sys/vm/drop_caches": "0\n", "proc/sys/vm/compact_memory": "0\n",
                 f"{SPBM_HWMON}/name": "spbm\n", PROCHOT: "0\n"}
        for zone, (name, _) in enumerate(THERMAL_ZONES):
            files[f"sys/class/thermal/thermal_zone{zone}/type"] = name + "\n"
        for index, (rdma, netdev) in enumerate(IB_DEVICES):
            port, base = ib_port(device.hostname, index), f"sys/class/infiniband/{rdma}"
            active = index == 0
            files |= {f"{base}/ports/1/state": "4: ACTIVE\n" if active else "1: DOWN\n",
                      f"{base}/ports/1/rate": "200 Gb/sec (4X HDR)\n" if active
                      else "40 Gb/sec (4X QDR)\n",
                      f"{base}/ports/1/link_layer": "Ethernet\n",
                      f"{base}/device/net/{netdev}/address": port["mac"] + "\n"}
            for gid, value in enumerate((port["gid"], port["gid"], port["gid4"], port["gid4"])):
                files[f"{base}/ports/1/gids/{gid}"] = value + "\n"
        for rail, label in enumerate([*RAIL_WATTS, "pl1", "pl2"], start=1):
            files[f"{SPBM_HWMON}/power{rail}_label"] = label + "\n"
        for relative, text in files.items():
            self.write(relative, text)
        self.models = model_disk.SimModelDisk(device.wall_time)
        self.models.seed_files(self.home)
        (self.path / "var" / "run").mkdir(parents=True, exist_ok=True)
        self._write_stand_ins()

    def _write_stand_ins(self) -> None:
        bin_dir = self.path / "bin"
        bin_dir.mkdir(parents=True, exist_ok=True)
        for name, body in _SCRIPTS.items():
            (bin_dir / name).write_text(f"#!/bin/sh\n{body}\n", encoding="utf-8")
        relay = Path(standin.__file__).read_text(encoding="utf-8")
        for name in RELAYED:  # -S: no site-packages to import, it starts in ~20 ms
            (bin_dir / name).write_text(f"#!{sys.executable} -S\n{relay}", encoding="utf-8")
        for entry in bin_dir.iterdir():
            entry.chmod(0o755)

    def remove(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)

    # --- the moving parts ------------------------------------------------------------------
    def refresh(self) -> None:
        """Write the current state; act on a lever pulled since (blocking: a few small files)."""
        device, memory = self.device, self.device.memory
        for relative, action in ACTIONS.items():
            if (self.path / relative).read_text(encoding="utf-8").strip() not in ("", "0"):
                getattr(memory, action)()
                self._written.pop(relative)
                self.write(relative, "0\n")
        now = device.clock()
        meminfo = device.meminfo(now)
        kb = {line.split(":")[0]: int(line.split()[1]) for line in meminfo.splitlines()
              if line.endswith(" kB")}
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
        if device.kind == "gb10":
            gpu_w = device.gpu(0, now).power_draw or 0.0
            watts = [gpu_w + base for base in RAIL_WATTS.values()] + [140.0, 240.0]
            for rail, value in enumerate(watts, start=1):
                self.write(f"{SPBM_HWMON}/power{rail}_input", f"{int(value * 1e6)}\n")
        words = int(device.uptime_s(now) * 3.1e6)  # ~12 MB/s of chatter on the cabled port
        for index, (rdma, _) in enumerate(IB_DEVICES):
            counters = f"sys/class/infiniband/{rdma}/ports/1/counters"
            self.write(f"{counters}/port_rcv_data", f"{words if index == 0 else 0}\n")
            self.write(f"{counters}/port_xmit_data", f"{int(words * 0.93) if index == 0 else 0}\n")
        self._write_network()
        self.models.grow_download(self.home)
        self._write_processes(now)
        self._write_previous_boot()
        # last, so a reader's uptime is never newer than the jiffies it pairs with
        self.write("proc/stat", device.proc_stat(now))
        self.write("proc/uptime", device.uptime(now))

    def _write_network(self) -> None:
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
            uid = {"root": 0, "ollama": 998}.get(process.user, UID)
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

    def _write_previous_boot(self) -> None:
        memory = self.device.memory
        journal = "".join(f"2026-01-01T00:00:{i % 60:02d}+0000 {self.device.hostname} {line}\n"
                          for i, line in enumerate(memory.previous.journal))
        self.write("var/log/journal-previous", journal if memory.boots else "")
        for name, text in memory.previous.pstore.items():
            self.write(f"sys/fs/pstore/{name}", text)
