"""The simulated Spark's answer to the device-facts command (sparktui.core.facts).

Like the host-stat stream, the script text itself is not interpreted: the
shell recognises `sh -c FACTS_SCRIPT sparktui-facts` and prints what a DGX
Spark would, section by section, from the same sources `cat`, `df` and
`nvidia-smi` use. DCGM is absent (`dcgmi` is not found), as on a fresh Spark.
Set `device.cx7_peer = other_device` to cable two simulated Sparks together:
each then sees the other's port in its neighbour table.
"""

from __future__ import annotations

from sparktui.core.facts import SECTION
from sparktui.sim import hostfiles, nvsmi
from sparktui.sim.gpu_model import NCPU, SimDevice

LSCPU = """Architecture:             aarch64
  CPU op-mode(s):         64-bit
  Byte Order:             Little Endian
CPU(s):                   20
  On-line CPU(s) list:    0-19
Vendor ID:                ARM
  Model name:             Cortex-X925
    Model:                1
    Thread(s) per core:   1
    Core(s) per socket:   10
    Socket(s):            1
    Stepping:             r0p1
    CPU(s) scaling MHz:   100%
    CPU max MHz:          3900.0000
    CPU min MHz:          1378.0000
  Model name:             Cortex-A725
    Model:                1
    Thread(s) per core:   1
    Core(s) per socket:   10
    Socket(s):            1
    Stepping:             r0p1
    CPU max MHz:          2808.0000
    CPU min MHz:          338.0000
"""

DOCKER_VERSION = "28.3.3"
CTK_VERSION = ("NVIDIA Container Toolkit CLI version 1.17.8\n"
               "commit: f202b80a9b9d0db00d9b1d73c0128c8962c55f4d\n")
HF_CACHE_KB = 96_468_992  # about 92 GiB of models


def _addr_lines(device: SimDevice) -> str:
    lines = ["1: lo    inet 127.0.0.1/8 scope host lo\\       valid_lft forever",
             "2: enP7s7    inet 192.168.1.41/24 brd 192.168.1.255 scope global enP7s7\\"]
    for index, (_, netdev) in enumerate(hostfiles.IB_DEVICES):
        port = hostfiles.ib_port(device, index)
        n = 3 + index
        lines += [f"{n}: {netdev}    inet {port['ipv4']}/16 brd 169.254.255.255 scope link "
                  f"{netdev}\\       valid_lft forever preferred_lft forever",
                  f"{n}: {netdev}    inet6 {port['ipv6']}/64 scope link \\       "
                  "valid_lft forever preferred_lft forever"]
    return "\n".join(lines)


def _neigh_lines(device: SimDevice) -> str:
    lines = ["192.168.1.1 dev enP7s7 lladdr 00:11:22:33:44:55 REACHABLE"]
    peer = getattr(device, "cx7_peer", None)
    if isinstance(peer, SimDevice):
        theirs = hostfiles.ib_port(peer, 0)
        netdev = hostfiles.IB_DEVICES[0][1]
        lines.append(f"{theirs['ipv4']} dev {netdev} lladdr {theirs['mac']} REACHABLE")
    return "\n".join(lines)


def _ib_lines(device: SimDevice) -> str:
    lines = []
    for index, (rdma, netdev) in enumerate(hostfiles.IB_DEVICES):
        p = hostfiles.ib_port(device, index)
        gids = ",".join(p[f"gids/{g}"] for g in range(4))
        lines.append("\t".join(["ib", rdma, p["state"], p["rate"], p["counters/port_rcv_data"],
                                p["counters/port_xmit_data"], p["link_layer"],
                                f"{netdev}={p['mac']}", gids]))
    return "\n".join(lines)


def facts_output(device: SimDevice, home: str = "/home/spark") -> str:
    """Everything the facts script prints on a simulated Spark."""
    now = device.clock()
    cache = f"{home}/.cache/huggingface"
    df_out = hostfiles.df(["/"])[0]
    gpu_query, _, _ = nvsmi.render(
        ["--query-gpu=name,driver_version,compute_cap", "--format=csv,noheader"], device, now)
    sections = [
        ("hostname", device.hostname + "\n"),
        ("kernel", hostfiles.uname(device, "srm")),
        ("dgx-release", hostfiles.read("/etc/dgx-release", device, now) or ""),
        ("os-release", hostfiles.read("/etc/os-release", device, now) or ""),
        ("lscpu", LSCPU),
        ("nproc", f"{NCPU}\n"),
        ("meminfo", device.meminfo(now)),
        ("uptime", device.uptime(now)),
        ("df-root", df_out),
        ("df-cache", df_out),
        ("du-cache", f"{HF_CACHE_KB}\t{cache}\n"),
        ("nvidia-smi", nvsmi.render([], device, now)[0]),
        ("gpu", gpu_query),
        ("docker", DOCKER_VERSION + "\n"),
        ("nvidia-ctk", CTK_VERSION),
        ("dcgmi", "absent\n"),
        ("infiniband", _ib_lines(device) + "\n"),
        ("addr", _addr_lines(device) + "\n"),
        ("neigh", _neigh_lines(device) + "\n"),
        ("end", ""),
    ]
    return "".join(f"\n{SECTION}{name}\n{text}" for name, text in sections)
