"""A local stand-in for the Hugging Face Hub, so `huggingface_hub` makes a real cache.

No network here: `hf_hub_download` is pointed at this server with
HF_ENDPOINT and writes the real layout (blobs/, refs/main, snapshots/REV/
symlinks, .locks) into HF_HOME, exactly as a download from the Hub would.
A file can be served slowly, so the test can watch its `blobs/*.incomplete`
grow while the download runs.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

COMMIT = "0123456789abcdef0123456789abcdef01234567"


class HubStandIn:
    """`files`: repo id -> {file name: bytes}; `slow`: names served in small, slow pieces."""

    def __init__(self, files: dict[str, dict[str, bytes]], *, slow: set[str] = frozenset(),
                 piece: int = 4096, pause_s: float = 0.05) -> None:
        self.files = files
        self.release = threading.Event()  # set: slow files finish at full speed
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def _head(self) -> tuple[str, bytes] | None:
                repo, _, rest = self.path.partition("/resolve/")
                name = rest.split("/", 1)[-1]
                body = hub.files.get(repo.strip("/"), {}).get(name)
                if body is None:
                    self.send_response(404)
                    self.end_headers()
                    return None
                self.send_response(200)
                self.send_header("X-Repo-Commit", COMMIT)
                self.send_header("ETag", f'"{hashlib.sha256(body).hexdigest()}"')
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                return name, body

            def do_HEAD(self) -> None:
                self._head()

            def do_GET(self) -> None:
                found = self._head()
                if found is None:
                    return
                name, body = found
                if name not in slow:
                    self.wfile.write(body)
                    return
                for start in range(0, len(body), piece):
                    self.wfile.write(body[start:start + piece])
                    self.wfile.flush()
                    if not hub.release.is_set():
                        time.sleep(pause_s)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def download(self, hf_home: str, repo: str, name: str) -> str:
        """`huggingface_hub.hf_hub_download` into `hf_home`, from this stand-in (blocking)."""
        import huggingface_hub
        from huggingface_hub import constants

        os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
        # the library writes 10 MB at a time; a test file is a few MB, so write in
        # small pieces, or the .incomplete blob would not grow before it completes
        constants.DOWNLOAD_CHUNK_SIZE = 16384
        return huggingface_hub.hf_hub_download(
            repo, name, cache_dir=os.path.join(hf_home, "hub"), endpoint=self.url)

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()
