"""Events of a device worth a line of their own: guard steps, Xid errors, power, reboots.

Pure data: the services make them, the UI lists them, the flight recorder keeps
them. `text` may quote a device (an Xid line, a container name): sanitise it
before display, as every device text.
"""

from __future__ import annotations

import enum
import time
from dataclasses import dataclass, field


class Severity(enum.Enum):
    INFO = "info"
    WARNING = "warning"
    ALARM = "alarm"


@dataclass(frozen=True, slots=True)
class DeviceEvent:
    device: str
    kind: str  # "guard", "memory", "xid", "power", "reboot"
    text: str
    severity: Severity = Severity.INFO
    wall: float = field(default_factory=time.time)

    def as_json(self) -> dict:
        return {"device": self.device, "kind": self.kind, "text": self.text,
                "severity": self.severity.value, "wall": self.wall}

    @classmethod
    def from_json(cls, data: dict) -> DeviceEvent | None:
        try:
            return cls(str(data["device"]), str(data["kind"]), str(data["text"]),
                       Severity(data.get("severity", "info")), float(data["wall"]))
        except (KeyError, TypeError, ValueError):
            return None
