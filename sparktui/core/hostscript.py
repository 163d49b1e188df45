"""The shell loop that streams host figures, and its framing.

One long-lived `sh -c SCRIPT sparktui-hoststat INTERVAL_MS` per device prints a
block per tick (framing below; parsed by sparktui.core.hoststat). The loop uses
only shell builtins to read /proc and /sys, so each tick costs the device one
`sleep` process and nothing else: no SSH exec, no new channel, no cat/grep.

Besides CPU, /proc/meminfo, load and thermal zones, each block carries what a
GB10 needs to tell "free for CUDA" from "available after reclaim" and to see a
livelock coming (sparktui.core.memtruth parses these lines):
- `boot <boot_id>`: the kernel's boot id, to tell a reboot from a lost network;
- `psi <line>`: /proc/pressure/memory (some/full avg10/avg60/avg300/total);
- `buddy <line>`: /proc/buddyinfo, free blocks per order and zone;
- `rail <label> <microwatts>`: the spbm hwmon driver's power rails, when present;
- `prochot <value>`: the GB10 platform device's PROCHOT state, when present.
Files that do not exist print nothing: an old kernel has no PSI, most boxes no spbm.

Every path is read under `$SPARKTUI_ROOT`, unset on a real device: the simulated
Spark (sparktui.sim) runs this very script over a directory of its own.
"""

from __future__ import annotations

import shlex

HOSTSTAT_MARKER = "sparktui-hoststat"
BLOCK_BEGIN = f"--- {HOSTSTAT_MARKER} "  # then a timestamp: the device's uptime, in seconds
BLOCK_END = "--- end"
THERMAL_PREFIX = "thermal "  # then `<zone type> <millidegrees C>`
BOOT_PREFIX = "boot "  # then /proc/sys/kernel/random/boot_id
PSI_PREFIX = "psi "  # then a /proc/pressure/memory line
BUDDY_PREFIX = "buddy "  # then a /proc/buddyinfo line
RAIL_PREFIX = "rail "  # then `<power*_label> <power*_input in µW>`
PROCHOT_PREFIX = "prochot "  # then the platform device's prochot value

#: the /proc/meminfo lines the loop sends, and the MemInfo field each becomes
#: (sparktui.core.hoststat). The loop sends these only: a GB10's meminfo has ~55
#: lines, and every line is bytes to decrypt and a line to cut and match on the
#: watcher, 64 times a second for 64 devices.
MEMINFO_FIELDS: dict[str, str] = {
    "MemTotal": "total",
    "MemFree": "free",
    "MemAvailable": "available",
    "Buffers": "buffers",
    "Cached": "cached",
    "SReclaimable": "sreclaimable",
    "Shmem": "shmem",
    "SwapTotal": "swap_total",
    "SwapFree": "swap_free",
    "Unevictable": "unevictable",
    "Mlocked": "mlocked",
}

#: where the GB10's platform device keeps its PROCHOT flag (spark_hwmon's ACPI NVDA8800)
PROCHOT_PATH = "/sys/bus/platform/devices/NVDA8800:00/prochot"

# A block is gathered in a variable and written with one printf: a printf per line
# was a write(2) per line on the device and, with sshd forwarding each as it came,
# up to a packet per line for the watcher to decrypt and parse (70 lines a block).
# The hwmon directories are found once per stream (they do not come and go
# without a driver reload); the boot id is read once too, as it cannot change
# while the stream lives, and printed in every block so any block tells it.
_HOSTSTAT_TEMPLATE = r"""ms=${1:-1000}
case $ms in ''|*[!0-9]*) ms=1000 ;; esac
s=$((ms / 1000)).$(printf '%03d' $((ms % 1000)))
boot=
{ read -r boot < "${SPARKTUI_ROOT-}/proc/sys/kernel/random/boot_id"; } 2>/dev/null
rails=
for h in "${SPARKTUI_ROOT-}"/sys/class/hwmon/hwmon*; do
  { read -r n < "$h/name"; } 2>/dev/null || continue
  case $n in spbm*) rails="$rails $h" ;; esac
done
ph=${SPARKTUI_ROOT-}/sys/bus/platform/devices/NVDA8800:00/prochot
[ -r "$ph" ] || ph=
nl='
'
while :; do
  read -r up rest < "${SPARKTUI_ROOT-}/proc/uptime"
  b="--- sparktui-hoststat $up$nl"
  [ -n "$boot" ] && b="${b}boot $boot$nl"
  while read -r l; do
    case $l in cpu*) b="$b$l$nl" ;; *) break ;; esac
  done < "${SPARKTUI_ROOT-}/proc/stat"
  while IFS= read -r l; do
    case $l in @MEMINFO@) b="$b$l$nl" ;; esac
  done < "${SPARKTUI_ROOT-}/proc/meminfo"
  read -r l < "${SPARKTUI_ROOT-}/proc/loadavg" && b="$b$l$nl"
  for z in "${SPARKTUI_ROOT-}"/sys/class/thermal/thermal_zone*; do
    { read -r t < "$z/temp"; } 2>/dev/null || continue
    { read -r n < "$z/type"; } 2>/dev/null || n=${z##*/}
    b="${b}thermal $n $t$nl"
  done
  { while IFS= read -r l; do b="${b}psi $l$nl"
    done < "${SPARKTUI_ROOT-}/proc/pressure/memory"; } 2>/dev/null
  { while IFS= read -r l; do b="${b}buddy $l$nl"
    done < "${SPARKTUI_ROOT-}/proc/buddyinfo"; } 2>/dev/null
  for h in $rails; do
    for p in "$h"/power*_input; do
      { read -r v < "$p"; } 2>/dev/null || continue
      { read -r n < "${p%_input}_label"; } 2>/dev/null || n=${p##*/}
      b="${b}rail $n $v$nl"
    done
  done
  [ -n "$ph" ] && { read -r v < "$ph"; } 2>/dev/null && b="${b}prochot $v$nl"
  printf '%s' "$b--- end$nl"
  sleep "$s" || exit 0
done
"""

HOSTSTAT_SCRIPT = _HOSTSTAT_TEMPLATE.replace(
    "@MEMINFO@", "|".join(f"{key}:*" for key in MEMINFO_FIELDS))


def hoststat_command(interval_ms: int) -> str:
    """The command line to send to the device."""
    return f"sh -c {shlex.quote(HOSTSTAT_SCRIPT)} {HOSTSTAT_MARKER} {int(interval_ms)}"
