"""`sparktui doctor`: every layer between the user and a working Spark, checked in order.

Each check gives one `Check`: its layer ("client" or a device name), what was
checked, a status, what was found, and, when it is not fine, what to do. Later
layers of a device are skipped (with the reason) once an earlier one fails: a
refused key says nothing about Docker.

The device checks go through the same pieces as the app: the DeviceLink and SSH
transport (host keys, auth, ~/.ssh/config, NVIDIA Sync's aliases), the facts
read (nvidia-smi, disk), and the ContainerService (the Docker socket forwarded
over the connection, its problems classified by core.docker_problems). Only name
resolution and the TCP connect are probed on their own, because the transport
folds them into one "unreachable". The client checks are in doctor_client.py.
"""

from __future__ import annotations

import asyncio
import socket
import time
from dataclasses import asdict, dataclass

from sparktui.core.aio import within
from sparktui.core.device import DeviceSpec, FailureKind, LinkState, LinkStatus

OK, WARN, FAIL, SKIP = "ok", "warn", "fail", "skip"

GIB = 1024**3
DISK_FAIL_BYTES = 2 * GIB  # a pull or a model download fails at once
DISK_WARN_BYTES = 50 * GIB  # one large model's weights
DEFAULT_TIMEOUT_S = 20.0


@dataclass(frozen=True)
class Check:
    layer: str  # "client" or the device's name
    name: str  # "ssh-agent", "auth", ...
    status: str  # OK, WARN, FAIL or SKIP
    detail: str  # what was found
    fix: str | None = None  # what to do, when status is WARN or FAIL

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def _ssh_target(spec: DeviceSpec) -> tuple[str, int]:
    """HostName and Port as ssh would use them: the spec's, else ~/.ssh/config's (or Sync's)."""
    from sparktui.services.sshconfig import import_hosts

    host, port = spec.host, spec.port
    entry = next((h for h in import_hosts().hosts if h.alias == spec.host), None)
    if entry is not None:
        host = entry.hostname or host
        port = port or entry.port
    return host, port or 22


async def _resolve(layer: str, host: str) -> tuple[Check, str | None]:
    loop = asyncio.get_running_loop()
    try:
        infos = await within(
            loop.getaddrinfo(host, None, type=socket.SOCK_STREAM), 10)
    except (OSError, TimeoutError) as exc:
        fix = ("check the name; a .local name needs mDNS on this machine (avahi-daemon, "
               "libnss-mdns), or use the Spark's IP address, or add a HostName for it to "
               "~/.ssh/config; `sparktui discover` lists Sparks on this network")
        return Check(layer, "resolve", FAIL, f"cannot resolve {host}: {exc}", fix), None
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    return Check(layer, "resolve", OK, f"{host} is {', '.join(addresses[:3])}"), addresses[0]


async def _tcp(layer: str, address: str, port: int, timeout: float) -> Check:
    try:
        reader, writer = await within(asyncio.open_connection(address, port), timeout)
    except (OSError, TimeoutError) as exc:
        why = "no answer" if isinstance(exc, TimeoutError) else (exc.strerror or str(exc))
        return Check(layer, "tcp", FAIL, f"cannot connect to {address} port {port}: {why}",
                     "is the Spark on, on this network, and sshd running on that port? "
                     "(on the Spark: sudo systemctl status ssh); a firewall or VPN may drop it")
    try:
        banner = (await within(reader.readline(), timeout)).decode("ascii", "replace")
    except (OSError, TimeoutError):
        banner = ""
    finally:
        writer.close()
    from sparktui.core.sanitize import strip_control

    banner = strip_control(banner.strip())
    if not banner.startswith("SSH-"):
        return Check(layer, "tcp", WARN, f"{address} port {port} answers, but not as an "
                     f"SSH server ({banner[:60] or 'no banner'})",
                     "is this the right port? ssh listens on 22 unless told otherwise")
    return Check(layer, "tcp", OK, f"{address} port {port}: {banner[:60]}")


async def _wait_link(link, timeout: float) -> LinkStatus:
    """The link's first verdict: connected, failed, or retrying after a failed attempt."""
    settled = asyncio.Event()

    def listener(status: LinkStatus) -> None:
        if status.state is LinkState.CONNECTED or status.state is LinkState.FAILED or (
                status.state is LinkState.RECONNECTING and status.reason):
            settled.set()

    unsubscribe = link.subscribe(listener)
    try:
        link.start()
        await within(settled.wait(), timeout)
    except TimeoutError:
        pass
    finally:
        unsubscribe()
    return link.status


def _connection_checks(layer: str, spec: DeviceSpec, status: LinkStatus) -> list[Check]:
    where = spec.destination
    if status.state is LinkState.CONNECTED:
        return [Check(layer, "host key", OK, "known and matching (known_hosts)"),
                Check(layer, "auth", OK, "a key was accepted")]
    reason = status.reason or status.describe()
    kind = status.failure
    if kind is FailureKind.HOST_KEY_UNKNOWN:
        return [Check(layer, "host key", FAIL, reason,
                      f"check the fingerprint with the Spark's owner (on the Spark: "
                      f"ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub), then accept it: "
                      f"sparktui {spec.name} asks, or `ssh {where}` once, or "
                      "--accept-new-host-keys"),
                Check(layer, "auth", SKIP, "not tried: the host key is not trusted")]
    if kind is FailureKind.HOST_KEY_CHANGED:
        return [Check(layer, "host key", FAIL, reason,
                      "if the Spark was reinstalled, remove the old key (the ssh-keygen -R "
                      "line above) and connect again; if not, do not connect"),
                Check(layer, "auth", SKIP, "not tried: the host key changed")]
    if kind is FailureKind.AUTH:
        return [Check(layer, "host key", OK, "known and matching (known_hosts)"),
                Check(layer, "auth", FAIL, reason,
                      f"put your public key on the Spark: ssh-copy-id {where} (or in the "
                      "Devices tab: a, then a password, used once to install a key); check "
                      "IdentityFile in ~/.ssh/config and `ssh-add -l`")]
    return [Check(layer, "ssh", FAIL, reason,
                  "`ssh -v " + where + "` shows where it stops; see the checks above")]


async def _nvidia_smi(layer: str, facts) -> Check:
    if facts.nvidia_smi_problem:
        missing = "not found" in facts.nvidia_smi_problem
        detail = ("nvidia-smi is not on the PATH of your login shell" if missing
                  else f"nvidia-smi does not answer: {facts.nvidia_smi_problem}")
        fix = ("install the NVIDIA driver (DGX OS ships it; Ubuntu: sudo ubuntu-drivers "
               "install), or put nvidia-smi's directory on PATH in ~/.profile: sparktui "
               "runs it through your login shell" if missing else
               "run nvidia-smi on the Spark; a driver/library mismatch after an update "
               "needs a reboot; `sudo dmesg | grep -i nvrm` shows driver errors")
        return Check(layer, "nvidia-smi", FAIL, detail, fix)
    gpus = ", ".join(facts.gpu_names) or "a GPU"
    return Check(layer, "nvidia-smi", OK,
                 f"{gpus}; driver {facts.driver_version or '?'}, CUDA {facts.cuda_version or '?'}")


def _disk(layer: str, name: str, disk, what: str) -> Check | None:
    if disk is None:
        return None
    from sparktui.core.units import fmt_bytes

    free = disk.avail_bytes
    detail = (f"{fmt_bytes(free)} free of {fmt_bytes(disk.total_bytes)} on "
              f"{disk.mount} ({what}, {disk.used_pct:.0f} % used)")
    if free < DISK_FAIL_BYTES:
        return Check(layer, name, FAIL, detail,
                     "free space: docker system prune (unused images and containers), "
                     "delete models you no longer use (~/.cache/huggingface/hub), or "
                     "`sudo du -xh -d1 " + disk.mount + " | sort -h` to find what fills it")
    if free < DISK_WARN_BYTES:
        return Check(layer, name, WARN, detail,
                     "a large model's weights take tens of GB: make room before a download "
                     "(docker system prune, old models in ~/.cache/huggingface/hub)")
    return Check(layer, name, OK, detail)


SUDO_PROBE = ('if [ "$(id -u)" = 0 ]; then echo root; '
              "elif command -v sudo >/dev/null 2>&1; then sudo -n true 2>&1 && echo ok; "
              "else echo absent; fi")


async def _sudo(layer: str, link) -> Check:
    result = await link.run(SUDO_PROBE, timeout=15)
    out = result.stdout.strip().splitlines()
    last = out[-1] if out else ""
    if last == "root":
        return Check(layer, "sudo -n", OK, "logged in as root: the memory actions need no sudo")
    if last == "ok":
        return Check(layer, "sudo -n", OK, "sudo works without a password (memory actions)")
    fix = ("the memory actions (drop caches, compact memory) run `sudo -n`: allow them "
           "without a password with a sudoers rule (sudo visudo -f /etc/sudoers.d/sparktui), "
           "or run them yourself in a shell; everything else works without")
    if last == "absent":
        return Check(layer, "sudo -n", WARN, "sudo is not installed", fix)
    return Check(layer, "sudo -n", WARN, "sudo asks for a password", fix)


async def _docker(layer: str, link, socket_path: str, timeout: float) -> list[Check]:
    from sparktui.services.containers import ContainerService, ServiceState

    service = ContainerService(link, socket_path=socket_path, read_only=True)
    service.start()
    deadline = time.monotonic() + timeout
    try:
        while service.state not in (ServiceState.READY, ServiceState.PROBLEM):
            if time.monotonic() > deadline:
                return [Check(layer, "docker", FAIL,
                              f"Docker did not answer on {socket_path} within {timeout:g} s",
                              "on the Spark: sudo systemctl status docker")]
            await asyncio.sleep(0.05)
        if service.state is ServiceState.PROBLEM:
            message = service.problem.message if service.problem else "Docker is unusable"
            detail, _, fix = message.partition(" Fix: ")
            return [Check(layer, "docker", FAIL, detail, fix or None),
                    Check(layer, "nvidia runtime", SKIP, "not checked: Docker is unusable")]
        checks = [Check(layer, "docker", OK, f"Engine {service.engine_version or '?'} on "
                        f"{socket_path}, reached over the device's connection")]
        info = await asyncio.to_thread(service.require_client().info)
        runtimes = sorted((info.get("Runtimes") or {}).keys())
        cdi = info.get("CDISpecDirs") or []
        if "nvidia" in runtimes:
            checks.append(Check(layer, "nvidia runtime", OK, "Docker has the nvidia runtime"))
        else:
            from sparktui.core.docker_problems import NVIDIA_RUNTIME_FIX

            checks.append(Check(
                layer, "nvidia runtime", FAIL,
                f"Docker has no nvidia runtime (runtimes: {', '.join(runtimes) or 'none'}"
                f"{'; CDI dirs set' if cdi else ''}): containers cannot get the GPU",
                "install the NVIDIA Container Toolkit (DGX OS ships it), then: "
                + NVIDIA_RUNTIME_FIX))
        return checks
    finally:
        await service.close()


async def check_device(spec: DeviceSpec, settings, *, timeout: float = DEFAULT_TIMEOUT_S,
                       accept_new_host_keys: bool = False) -> list[Check]:
    """Every layer of one device, in order; a failed layer skips the ones above it."""
    layer = spec.name
    if spec.is_local:
        checks: list[Check] = []
    else:
        host, port = await asyncio.to_thread(_ssh_target, spec)
        resolved, address = await _resolve(layer, host)
        checks = [resolved]
        if address is None:
            return checks
        tcp = await _tcp(layer, address, port, min(timeout, 10.0))
        checks.append(tcp)
        if tcp.status == FAIL:
            return checks
    from sparktui.services.devices import make_link
    from sparktui.transport.ssh_types import SSHOptions

    options = SSHOptions(keepalive_interval=settings.keepalive_interval,
                         keepalive_count_max=settings.keepalive_count_max,
                         connect_timeout=min(timeout, 15.0),
                         accept_new_host_keys=accept_new_host_keys)
    link = make_link(spec, settings, ssh_options=options)
    try:
        status = await _wait_link(link, timeout)
        if not spec.is_local:
            checks += _connection_checks(layer, spec, status)
        if status.state is not LinkState.CONNECTED:
            return checks
        checks += await _device_layers(layer, link, settings, timeout)
    finally:
        await link.close()
    return checks


async def _device_layers(layer: str, link, settings, timeout: float) -> list[Check]:
    from sparktui.services.facts import FactsError, FactsService

    checks: list[Check] = []
    try:
        facts = (await FactsService().read(link)).facts
    except FactsError as exc:
        return [Check(layer, "facts", FAIL, str(exc),
                      "run `sh -c 'nvidia-smi; df -h'` over ssh to see what fails")]
    checks.append(await _nvidia_smi(layer, facts))
    checks += await _docker(layer, link, settings.docker_socket, timeout)
    disks = [_disk(layer, "disk /", facts.root_disk, "root")]
    if facts.cache_disk is not None and (
            facts.root_disk is None or facts.cache_disk.mount != facts.root_disk.mount):
        disks.append(_disk(layer, "disk models", facts.cache_disk, "~/.cache/huggingface"))
    checks += [disk for disk in disks if disk is not None] or [
        Check(layer, "disk", WARN, "df gave no figures", "run `df -h /` on the Spark")]
    checks.append(await _sudo(layer, link))
    return checks
