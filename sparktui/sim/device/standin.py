"""A tool on the simulated Spark's PATH that asks the device model (sim.ssh.relay).

`nvidia-smi`, `docker` and `kill` in the device root's bin/ are copies of this file:
the model of the GPU, the processes and the Docker engine lives in the simulator's
process, so the stand-in relays its name, arguments and stdin there over a UNIX
socket and writes back what comes: frames of one kind byte (o: stdout, e: stderr,
x: exit status), a 4-byte length, the bytes. Standard library only and no package
imports: it starts per call (python -S).
"""

import json
import os
import selectors
import socket
import struct
import sys

SOCKET_ENV = "SPARKTUI_SIM_SOCKET"


def main() -> int:
    name = os.path.basename(sys.argv[0])
    try:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(os.environ[SOCKET_ENV])
    except (KeyError, OSError) as exc:
        sys.stderr.write(f"{name}: the simulated device does not answer: {exc}\n")
        return 127
    sock.sendall(json.dumps([name, *sys.argv[1:]]).encode() + b"\n")
    selector = selectors.DefaultSelector()
    selector.register(sock, selectors.EVENT_READ)
    try:
        selector.register(sys.stdin.fileno(), selectors.EVENT_READ)
    except (ValueError, OSError):  # /dev/null or a regular file: no stdin to relay
        sock.shutdown(socket.SHUT_WR)
    buffer = b""
    while True:
        for key, _ in selector.select():
            if key.fileobj is not sock:  # stdin
                data = os.read(sys.stdin.fileno(), 65536)
                if data:
                    sock.sendall(data)
                else:
                    selector.unregister(sys.stdin.fileno())
                    sock.shutdown(socket.SHUT_WR)
                continue
            data = sock.recv(65536)
            if not data:
                return 0
            buffer += data
            while len(buffer) >= 5 and len(buffer) >= 5 + struct.unpack(">I", buffer[1:5])[0]:
                size = 5 + struct.unpack(">I", buffer[1:5])[0]
                kind, payload, buffer = buffer[:1], buffer[5:size], buffer[size:]
                if kind == b"x":
                    return int(payload)
                out = sys.stdout if kind == b"o" else sys.stderr
                out.buffer.write(payload)
                out.flush()


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (BrokenPipeError, KeyboardInterrupt):
        sys.exit(0)
