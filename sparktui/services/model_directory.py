"""The session's answer to "which process is which model", shared by every tab.

The Serving tab works the rows out (sparktui.services.model_map) whenever it
has read the endpoints; the Telemetry tab's process list and the Containers
tab's detail read them from here, by process id or container id, so a GPU
process shows its container and model, and a container the model it serves.
Kept on the session's Fleet, which every tab is given. No I/O here.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ModelRow:
    device: str
    pid: int | None = None
    process: str | None = None  # raw device text: sanitise to show
    gpu_memory_mib: float | None = None
    container: str | None = None  # name
    container_id: str | None = None
    port: int | None = None
    endpoint: str | None = None  # its URL as seen from the device
    models: tuple[str, ...] = ()

    @property
    def model_text(self) -> str:
        return ", ".join(self.models) if self.models else "—"

    def describe(self) -> str:
        """'container vllm-qwen · :8000 · Qwen/Qwen3-8B', the parts that are known."""
        parts = []
        if self.container:
            parts.append(f"container {self.container}")
        if self.port:
            parts.append(f":{self.port}")
        if self.models:
            parts.append(self.model_text)
        return " · ".join(parts)


class ModelDirectory:
    """The latest rows per device."""

    def __init__(self) -> None:
        self._rows: dict[str, tuple[ModelRow, ...]] = {}

    def update(self, device: str, rows: list[ModelRow] | tuple[ModelRow, ...]) -> None:
        self._rows[device] = tuple(rows)

    def rows(self, device: str) -> tuple[ModelRow, ...]:
        return self._rows.get(device, ())

    def for_pid(self, device: str, pid: int) -> ModelRow | None:
        return next((r for r in self.rows(device) if r.pid == pid), None)

    def for_container(self, device: str, container_id: str) -> ModelRow | None:
        return next((r for r in self.rows(device) if r.container_id and r.models and (
            container_id.startswith(r.container_id) or r.container_id.startswith(container_id))),
            None)
