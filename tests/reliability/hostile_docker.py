"""A hostile Docker API on a UNIX socket: enough of the Engine API for ContainerService.

It answers /_ping, /version and /events like a daemon, lists one good container
and some bad ones, and answers `inspect` of the bad ones with JSON that is not
an object or has no usable Id. `requests` counts every path asked, so a test can
show whether the client keeps re-fetching. One request per connection
(`Connection: close`); /events stays open, chunked, and sends nothing.

Run by hand: `python -m tests.reliability.hostile_docker SOCKET`.
"""

from __future__ import annotations

import asyncio
import collections
import json
import re
import sys

GOOD_ID = "a" * 64
GOOD = {"Id": GOOD_ID, "Name": "/good", "Created": "2026-01-01T00:00:00Z",
        "Config": {"Image": "busybox", "Labels": {}},
        "State": {"Status": "exited", "ExitCode": 0, "Running": False}}
#: inspect answers for the bad rows of the list: not an object, an array, no Id
BAD = {"b" * 64: [1, 2, 3], "c" * 64: "just a string", "d" * 64: {"Id": None, "State": 5}}


class HostileDocker:
    def __init__(self, path: str) -> None:
        self.path = path
        self.requests: collections.Counter[str] = collections.Counter()
        self._server: asyncio.AbstractServer | None = None

    async def start(self) -> HostileDocker:
        self._server = await asyncio.start_unix_server(self._handle, self.path)
        return self

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def asked(self, endpoint: str) -> int:
        return sum(n for path, n in self.requests.items() if path.endswith(endpoint))

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            path = head.split(b" ", 2)[1].decode("latin-1").split("?", 1)[0]
            path = re.sub(r"^/v[0-9.]+", "", path)
            self.requests[path] += 1
            if path == "/events":
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                             b"Transfer-Encoding: chunked\r\n\r\n")
                await writer.drain()
                await reader.read()  # until the client hangs up
                return
            status, body = self._answer(path)
            writer.write(f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\n"
                         f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
                         .encode() + body)
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    def _answer(self, path: str) -> tuple[str, bytes]:
        if path == "/_ping":
            return "200 OK", b"OK"
        if path == "/version":
            return "200 OK", json.dumps({"Version": "27.0.0", "ApiVersion": "1.45",
                                         "MinAPIVersion": "1.24"}).encode()
        if path == "/containers/json":
            rows = [{"Id": GOOD_ID, "Names": ["/good"]}, "not a row", {"NoId": 1}]
            rows += [{"Id": cid} for cid in BAD]
            return "200 OK", json.dumps(rows).encode()
        match = re.fullmatch(r"/containers/([^/]+)/json", path)
        if match:
            cid = match.group(1)
            if cid == GOOD_ID:
                return "200 OK", json.dumps(GOOD).encode()
            if cid in BAD:
                return "200 OK", json.dumps(BAD[cid]).encode()
        return "404 Not Found", b'{"message": "no such thing"}'


async def _main(path: str) -> None:
    server = await HostileDocker(path).start()
    print(f"hostile docker on {path}", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await server.close()


if __name__ == "__main__":
    asyncio.run(_main(sys.argv[1]))
