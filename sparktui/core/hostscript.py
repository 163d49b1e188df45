"""The shell loop that streams host figures, and its framing.

One long-lived `sh -c SCRIPT sparktui-hoststat INTERVAL_MS` per device prints a
block per tick (framing below; parsed by sparktui.core.hoststat). The loop uses
only shell builtins to read /proc and /sys, so each tick costs the device one
`sleep` process and nothing else: no SSH exec, no new channel, no cat/grep.
"""

from __future__ import annotations

import shlex

HOSTSTAT_MARKER = "sparktui-hoststat"
BLOCK_BEGIN = f"--- {HOSTSTAT_MARKER} "  # then a timestamp: the device's uptime, in seconds
BLOCK_END = "--- end"
THERMAL_PREFIX = "thermal "  # then `<zone type> <millidegrees C>`

HOSTSTAT_SCRIPT = r"""ms=${1:-1000}
case $ms in ''|*[!0-9]*) ms=1000 ;; esac
s=$((ms / 1000)).$(printf '%03d' $((ms % 1000)))
while :; do
  read -r up rest < /proc/uptime
  printf '%s\n' "--- sparktui-hoststat $up"
  while read -r l; do
    case $l in cpu*) printf '%s\n' "$l" ;; *) break ;; esac
  done < /proc/stat
  while IFS= read -r l; do printf '%s\n' "$l"; done < /proc/meminfo
  read -r l < /proc/loadavg && printf '%s\n' "$l"
  for z in /sys/class/thermal/thermal_zone*; do
    { read -r t < "$z/temp"; } 2>/dev/null || continue
    { read -r n < "$z/type"; } 2>/dev/null || n=${z##*/}
    printf 'thermal %s %s\n' "$n" "$t"
  done
  printf '%s\n' "--- end"
  sleep "$s" || exit 0
done
"""


def hoststat_command(interval_ms: int) -> str:
    """The command line to send to the device."""
    return f"sh -c {shlex.quote(HOSTSTAT_SCRIPT)} {HOSTSTAT_MARKER} {int(interval_ms)}"
