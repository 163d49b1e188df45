"""A real Docker engine for the container tests, and a busybox image made without a registry.

- `DockerDaemon`: one `dockerd` with its own socket, data root, exec root and pid
  file. The main one listens on /var/run/docker.sock; a test may start a second
  one beside it (its own paths, no bridge, no iptables) and stop it at will.
- `ensure_main_daemon()`: use the daemon answering on /var/run/docker.sock, or
  start one (and remember to stop it at the end: only the one we started).
- `import_busybox(client, name)`: a rootfs of /bin/busybox plus its applets as
  symlinks, and a /www/v1/models JSON for `httpd`, imported with `docker import`
  (from a tarball: no registry is reachable).

Under CI=true a missing dockerd or busybox fails the tests (tests.infra.require).
"""

from __future__ import annotations

import dataclasses
import io
import os
import shutil
import signal
import socket
import subprocess
import tarfile
import tempfile
import threading
import time

import pytest

from tests.infra.common import require

MAIN_SOCKET = "/var/run/docker.sock"
BUSYBOX_CANDIDATES = ("/bin/busybox", "/usr/bin/busybox")
APPLETS = ("sh", "sleep", "echo", "printf", "httpd", "cat", "ls", "true", "false", "test",
           "kill", "seq", "wget", "env", "id")
MODELS_JSON = b'{"object":"list","data":[{"id":"busybox-test-model","object":"model"}]}'
TEST_LABEL = "io.sparktui.test"


def dockerd_binary() -> str | None:
    return shutil.which("dockerd")


def busybox_binary() -> str | None:
    for path in BUSYBOX_CANDIDATES:
        if os.access(path, os.X_OK):
            return path
    return shutil.which("busybox")


def socket_answers(path: str, timeout: float = 2.0) -> bool:
    """True when something on the UNIX socket answers Docker's GET /_ping with OK."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(path)
            sock.sendall(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
            data = b""
            while chunk := sock.recv(4096):
                data += chunk
    except OSError:
        return False
    return data.startswith(b"HTTP/1.") and data.rstrip().endswith(b"OK")


class DockerDaemon:
    """One dockerd process. `start()` waits until its socket answers."""

    def __init__(self, socket_path: str, *, root: str | None = None,
                 extra_args: list[str] | None = None) -> None:
        self.socket_path = socket_path
        self.root = root  # None: the daemon's default data and exec roots (the main one)
        self.extra_args = list(extra_args or [])
        self.proc: subprocess.Popen | None = None
        self.log_path = os.path.join(root or tempfile.gettempdir(),
                                     f"dockerd-{os.getpid()}-{id(self)}.log")

    @property
    def command(self) -> list[str]:
        argv = [dockerd_binary() or "dockerd", "--host", f"unix://{self.socket_path}"]
        if self.root is not None:
            # its own bridge: `--bridge none` would make this daemon delete docker0,
            # the main daemon's bridge, on start
            argv += ["--data-root", os.path.join(self.root, "data"),
                     "--exec-root", os.path.join(self.root, "exec"),
                     "--pidfile", os.path.join(self.root, "docker.pid"),
                     "--bridge", self.bridge, "--iptables=false", "--ip-masq=false"]
        return argv + self.extra_args

    @property
    def bridge(self) -> str:
        return f"sptbr{os.getpid() % 100000}"  # at most 15 characters

    def _make_bridge(self) -> None:
        if subprocess.run(["ip", "link", "show", self.bridge], capture_output=True).returncode:
            third = os.getpid() % 250 + 1
            for argv in (["ip", "link", "add", self.bridge, "type", "bridge"],
                         ["ip", "addr", "add", f"10.213.{third}.1/24", "dev", self.bridge],
                         ["ip", "link", "set", self.bridge, "up"]):
                subprocess.run(argv, capture_output=True, check=True)

    def start(self, timeout: float = 60.0) -> DockerDaemon:
        if self.root is not None:
            self._make_bridge()
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(self.command, stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=log, start_new_session=True)
        deadline = time.monotonic() + timeout
        while not socket_answers(self.socket_path, timeout=1.0):
            if self.proc.poll() is not None:
                raise RuntimeError(f"dockerd exited with {self.proc.returncode}:\n"
                                   f"{self.log_tail()}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"dockerd did not answer in {timeout:.0f} s:\n"
                                   f"{self.log_tail()}")
            time.sleep(0.05)
        return self

    def log_tail(self, lines: int = 30) -> str:
        try:
            with open(self.log_path, encoding="utf-8", errors="replace") as handle:
                return "".join(handle.readlines()[-lines:])
        except OSError:
            return ""

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM and wait: dockerd stops its containers and removes its socket."""
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)

    def close(self) -> None:
        self.stop()
        if self.root is not None:
            # overlay mounts of a daemon that died hard would make rmtree fail; try anyway
            subprocess.run(["umount", "-R", os.path.join(self.root, "exec")],
                           capture_output=True, check=False)
            shutil.rmtree(self.root, ignore_errors=True)
            subprocess.run(["ip", "link", "del", self.bridge], capture_output=True, check=False)


def ensure_main_daemon() -> DockerDaemon | None:
    """The daemon on /var/run/docker.sock: None when one already answers, else a started one."""
    if socket_answers(MAIN_SOCKET):
        return None
    return DockerDaemon(MAIN_SOCKET).start()


def busybox_tar(busybox: str) -> bytes:
    """A rootfs tarball: /bin/busybox, applet symlinks, /tmp, /www/v1/models."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for directory in ("bin", "tmp", "www", "www/v1", "root", "etc"):
            info = tarfile.TarInfo(directory)
            info.type = tarfile.DIRTYPE
            info.mode = 0o1777 if directory == "tmp" else 0o755
            tar.addfile(info)
        tar.add(busybox, arcname="bin/busybox")
        for applet in APPLETS:
            info = tarfile.TarInfo(f"bin/{applet}")
            info.type = tarfile.SYMTYPE
            info.linkname = "busybox"
            tar.addfile(info)
        for name, data in (("www/v1/models", MODELS_JSON),
                           ("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n"),
                           ("etc/group", b"root:x:0:\n")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def import_busybox(client, repository: str, tag: str) -> str:
    """`docker import` the busybox rootfs as repository:tag; returns the image id."""
    busybox = busybox_binary()
    if busybox is None:
        raise RuntimeError("busybox is not installed (apt-get install busybox-static)")
    client.api.import_image_from_data(busybox_tar(busybox), repository=repository, tag=tag)
    return client.images.get(f"{repository}:{tag}").id


def remove_labelled(client, value: str) -> None:
    """Force-remove every container carrying TEST_LABEL=value."""
    for item in client.api.containers(all=True, filters={"label": f"{TEST_LABEL}={value}"}):
        try:
            client.api.remove_container(item["Id"], force=True, v=True)
        except Exception as exc:  # already gone is fine; anything else is worth a line
            if "No such container" not in str(exc):
                print(f"cleanup: {item['Id'][:12]}: {exc}")


# -- fixtures (imported by tests/conftest.py) ---------------------------------------------

@dataclasses.dataclass
class DockerEngine:
    """The session's Docker engine: a docker-py client, the test image, a cleanup label."""

    client: object
    socket_path: str
    image: str  # repository:tag of the busybox image
    session: str  # the value of TEST_LABEL on every container the tests make
    started: bool  # True when this session started the daemon (and will stop it)

    def labels(self, **extra: str) -> dict[str, str]:
        return {TEST_LABEL: self.session, **extra}

    def run(self, command, *, name: str | None = None, **kwargs):
        """A detached container from the test image, labelled for cleanup."""
        labels = dict(kwargs.pop("labels", None) or {})
        labels[TEST_LABEL] = self.session
        return self.client.containers.run(self.image, command, name=name, detach=True,
                                          labels=labels, **kwargs)


@pytest.fixture(scope="session")
def docker_engine():
    """A running dockerd on /var/run/docker.sock and a busybox image, for the whole session.

    Starts dockerd only when nothing answers there, and stops only a daemon it
    started. Every container the tests label with `engine.session` is removed at
    the end, and the image with it.
    """
    require(dockerd_binary() is not None or socket_answers(MAIN_SOCKET),
            "dockerd (apt-get install docker.io)")
    require(busybox_binary() is not None, "busybox (apt-get install busybox-static)")
    import docker

    daemon = ensure_main_daemon()
    client = docker.DockerClient(base_url=f"unix://{MAIN_SOCKET}", version="auto", timeout=60)
    session = f"s{os.getpid()}"
    repository = "sparktui-test/busybox"
    engine = DockerEngine(client, MAIN_SOCKET, f"{repository}:{session}", session,
                          daemon is not None)
    try:
        import_busybox(client, repository, session)
        yield engine
    finally:
        remove_labelled(client, session)
        # deploys make their own containers (no test label): find them by the image
        for item in client.api.containers(all=True, filters={"ancestor": engine.image}):
            client.api.remove_container(item["Id"], force=True, v=True)
        try:
            client.images.remove(engine.image, force=True)
        except docker.errors.ImageNotFound:
            pass
        client.close()
        if daemon is not None:
            daemon.stop()


#: what the "colours" sample container logs: colour, cursor moves, a title, markup, noise
COLOUR_SCRIPT = (
    r'printf "\033[31mred\033[0m plain\n"; '
    r'printf "\033[2J\033[Hcursor-moved\n"; '
    r'printf "\033]0;evil title\007after-osc\n"; '
    r'printf "[bold red]markup[/] stays\n"; '
    r'printf "bin\001\002\377ary\n"; '
    r'exec sleep 3600'
)
MARKUP = "[bold red]x[/]"


@dataclasses.dataclass
class Samples:
    colours: object
    markup: object
    exits: object
    health: object

    @property
    def all(self) -> list:
        return [self.colours, self.markup, self.exits, self.health]


def make_samples(engine: DockerEngine, prefix: str) -> Samples:
    """The four sample containers the tests look at (no network: nothing needs one)."""
    common = {"network_mode": "none", "init": True}
    colours = engine.run(["sh", "-c", COLOUR_SCRIPT], name=f"{prefix}-colours", **common)
    markup = engine.run(["sh", "-c", f"echo '{MARKUP}'; exec sleep 3600"],
                        name=f"{prefix}-markup", labels={"note": MARKUP}, **common)
    exits = engine.run(["sh", "-c", "echo bye; exit 3"], name=f"{prefix}-exits", **common)
    health = engine.run(["sleep", "3600"], name=f"{prefix}-health",
                        healthcheck={"test": ["CMD", "true"], "interval": 500_000_000,
                                     "start_period": 0, "retries": 1}, **common)
    exits.wait(timeout=30)
    return Samples(colours, markup, exits, health)


def remove_samples(samples: Samples) -> None:
    for container in samples.all:
        try:
            container.remove(force=True)
        except Exception as exc:  # gone already (a test removed it) is fine
            if "No such container" not in str(exc):
                raise


# -- a registry on loopback, so a real `docker pull` (and its progress) can be tested --------

class FakeRegistry:
    """A read-only Docker Registry v2 on 127.0.0.1 serving one busybox image.

    dockerd trusts registries on 127.0.0.0/8 over plain HTTP, so
    `127.0.0.1:PORT/<any name>:<any tag>` pulls this image, layer bytes and all.
    """

    def __init__(self) -> None:
        import gzip
        import hashlib
        import json
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        busybox = busybox_binary()
        if busybox is None:
            raise RuntimeError("busybox is not installed (apt-get install busybox-static)")
        raw = busybox_tar(busybox)
        layer = gzip.compress(raw, compresslevel=1)

        def digest(data: bytes) -> str:
            return "sha256:" + hashlib.sha256(data).hexdigest()

        config = json.dumps({
            "architecture": "amd64", "os": "linux", "config": {"Cmd": ["sh"]},
            "rootfs": {"type": "layers", "diff_ids": [digest(raw)]},
            "history": [{"created_by": "sparktui test registry"}]}).encode()
        manifest = json.dumps({
            "schemaVersion": 2,
            "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "config": {"mediaType": "application/vnd.docker.container.image.v1+json",
                       "size": len(config), "digest": digest(config)},
            "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
                        "size": len(layer), "digest": digest(layer)}]}).encode()
        self.layer_size = len(layer)
        self.manifest_digest = digest(manifest)
        blobs = {digest(config): config, digest(layer): layer}
        manifest_type = "application/vnd.docker.distribution.manifest.v2+json"

        class Handler(BaseHTTPRequestHandler):
            def _answer(self, body: bytes | None) -> None:
                path = self.path.split("?")[0]
                headers = {"Docker-Distribution-API-Version": "registry/2.0"}
                if path == "/v2/":
                    data, kind = b"{}", "application/json"
                elif "/manifests/" in path:
                    data, kind = manifest, manifest_type
                    headers["Docker-Content-Digest"] = digest(manifest)
                elif "/blobs/" in path and path.rsplit("/", 1)[1] in blobs:
                    data, kind = blobs[path.rsplit("/", 1)[1]], "application/octet-stream"
                    headers["Docker-Content-Digest"] = path.rsplit("/", 1)[1]
                else:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(data)))
                for key, value in headers.items():
                    self.send_header(key, value)
                self.end_headers()
                if body is None:
                    self.wfile.write(data)

            def do_GET(self) -> None:
                self._answer(None)

            def do_HEAD(self) -> None:
                self._answer(b"")

            def log_message(self, *args) -> None:  # quiet
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def image(self, name: str, tag: str) -> str:
        return f"127.0.0.1:{self.port}/{name}:{tag}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
