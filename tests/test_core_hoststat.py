"""Host stream blocks: examples, then garbage and truncation fuzzing."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sparktui.core.hoststat import (
    BLOCK_END,
    BLOCK_HEADER,
    CpuTimes,
    HostSampler,
    HostSnapshot,
    HostStatBlockParser,
    LoadAvg,
    MemInfo,
    ThermalZone,
    cpu_utilisation,
    hottest,
    memory_pressure,
    parse_cpu_line,
    parse_loadavg,
    parse_meminfo,
    parse_thermal_line,
)

FUZZ = settings(max_examples=200, deadline=None)

KB = 1024

BLOCK_1 = """\
--- sparktui-hoststat 1764360000.123
cpu  4705 356 584 3699 23 23 0 0 0 0
cpu0 1393280 32966 572056 13343292 6130 0 17875 0 0 0
cpu1 1000 0 1000 8000 0 0 0 0 0 0
MemTotal:       127553024 kB
MemFree:         1234567 kB
MemAvailable:   100000000 kB
Buffers:           12345 kB
Cached:          5000000 kB
SwapCached:            0 kB
Shmem:            200000 kB
SReclaimable:     300000 kB
SwapTotal:       8388604 kB
SwapFree:        8388604 kB
HugePages_Total:       0
Hugepagesize:       2048 kB
0.52 0.58 0.59 1/389 12345
thermal acpitz 45000
thermal cpu-thermal 47500
thermal broken-probe -273150
--- end
"""

BLOCK_2 = """\
--- sparktui-hoststat 1764360001.125
cpu  4805 356 634 3749 23 23 0 0 0 0
cpu0 1393380 32966 572056 13343292 6130 0 17875 0 0 0
cpu1 1000 0 1000 8000 0 0 0 0 0 0
MemTotal:       127553024 kB
MemAvailable:    90000000 kB
Cached:          6000000 kB
1.00 0.70 0.60 3/390 12400
thermal acpitz 46000
--- end
"""


def feed_all(parser: HostStatBlockParser, text: str) -> list[HostSnapshot]:
    return parser.feed_lines(text.splitlines())


def test_example_block():
    [snap] = feed_all(HostStatBlockParser(), BLOCK_1)
    assert snap.t == pytest.approx(1764360000.123)
    assert snap.cpu == CpuTimes(4705, 356, 584, 3699, 23, 23, 0, 0, 0, 0)
    assert len(snap.cores) == 2
    assert snap.cores[0].user == 1393280
    assert snap.mem.total == 127553024 * KB
    assert snap.mem.available == 100000000 * KB
    assert snap.mem.used == (127553024 - 100000000) * KB
    assert snap.mem.page_cache == (12345 + 5000000 + 300000 - 200000) * KB
    assert snap.mem.swap_used == 0
    assert snap.load == LoadAvg(0.52, 0.58, 0.59, 1, 389)
    assert snap.thermal[:2] == (ThermalZone("acpitz", 45.0), ThermalZone("cpu-thermal", 47.5))
    assert hottest(snap.thermal) == ThermalZone("cpu-thermal", 47.5)


def test_sampler_turns_two_blocks_into_figures():
    parser = HostStatBlockParser()
    sampler = HostSampler()
    first, second = feed_all(parser, BLOCK_1 + "garbage between\n" + BLOCK_2)
    one = sampler.update(first)
    assert one.cpu_pct is None  # no previous sample yet
    assert one.per_core_pct == (None, None)
    assert one.mem_total == 127553024 * KB
    assert one.hottest_zone == ThermalZone("cpu-thermal", 47.5)
    assert one.hottest_c == 47.5
    two = sampler.update(second)
    # total delta 100+50+50 = 200, idle delta 50 -> 75 % busy
    assert two.cpu_pct == pytest.approx(75.0)
    assert two.per_core_pct[0] == pytest.approx(100.0)
    assert two.per_core_pct[1] is None  # no ticks passed on cpu1: unknown, not 0
    assert (two.load1, two.load5, two.load15) == (1.0, 0.7, 0.6)
    assert two.mem_available == 90000000 * KB
    assert two.mem_used == (127553024 - 90000000) * KB
    assert two.page_cache == 6000000 * KB
    assert two.swap_used is None


def test_truncated_block_never_yields_half_a_snapshot():
    cut = BLOCK_1.splitlines()[:6]
    snaps = HostStatBlockParser().feed_lines([*cut, *BLOCK_2.splitlines()])
    assert len(snaps) == 1
    assert snaps[0].t == pytest.approx(1764360001.125)
    parser = HostStatBlockParser()
    assert parser.feed_lines(cut) == []
    assert parser.in_block


def test_block_without_cpu_or_memtotal_is_damage():
    no_cpu = "\n".join(line for line in BLOCK_1.splitlines() if not line.startswith("cpu "))
    no_mem = "\n".join(line for line in BLOCK_1.splitlines() if "MemTotal" not in line)
    assert feed_all(HostStatBlockParser(), no_cpu) == []
    assert feed_all(HostStatBlockParser(), no_mem) == []


def test_uptime_header_from_hostscript():
    lines = BLOCK_2.splitlines()
    [snap] = HostStatBlockParser().feed_lines(["--- sparktui-hoststat 350735.47", *lines[1:]])
    assert snap.t == 350735.47


def test_bad_header_starts_nothing():
    parser = HostStatBlockParser()
    body = BLOCK_1.splitlines()[1:]
    assert parser.feed_lines(["--- sparktui-hoststat nan", *body]) == []
    assert parser.feed_lines(["--- sparktui-hoststat", *body]) == []


def test_runaway_block_is_dropped():
    parser = HostStatBlockParser()
    parser.feed_line(BLOCK_1.splitlines()[0])
    for _ in range(10_000):
        parser.feed_line("cpu0 1 2 3 4")
    assert len(parser._lines) <= 4096
    assert parser.feed_line(BLOCK_END) is None


def test_meminfo_missing_fields_are_none():
    info = parse_meminfo("MemTotal: 1000 kB\nMemFree: 10 kB\n")
    assert info.total == 1000 * KB
    assert info.available is None
    assert info.used is None
    assert info.page_cache is None
    assert parse_meminfo("") == MemInfo()


def test_cpu_utilisation_guards():
    a = CpuTimes(100, 0, 100, 800)
    b = CpuTimes(150, 0, 150, 900)
    assert cpu_utilisation(a, b) == pytest.approx(50.0)
    assert cpu_utilisation(a, a) is None  # zero delta
    assert cpu_utilisation(b, a) is None  # counters went backwards (reset)
    assert cpu_utilisation(None, b) is None
    # guest time is part of user time already: not counted twice
    c = CpuTimes(150, 0, 150, 900, guest=50)
    assert cpu_utilisation(a, c) == pytest.approx(50.0)


def test_line_parsers():
    assert parse_cpu_line("cpu  1 2 3 4") == (None, CpuTimes(1, 2, 3, 4))
    assert parse_cpu_line("cpu12 1 2 3 4 5 6 7 8 9 10 11") == (
        12, CpuTimes(1, 2, 3, 4, 5, 6, 7, 8, 9, 10))
    assert parse_cpu_line("cpu 1 2 3") is None
    assert parse_cpu_line("cpux 1 2 3 4") is None
    assert parse_loadavg("0.52 0.58 0.59 1/389 12345") == LoadAvg(0.52, 0.58, 0.59, 1, 389)
    assert parse_loadavg("0.52 0.58 0.59") == LoadAvg(0.52, 0.58, 0.59)
    assert parse_loadavg("0.52 0.58") is None
    assert parse_thermal_line("thermal acpitz 45000") == ThermalZone("acpitz", 45.0)
    assert parse_thermal_line("thermal acpitz -5000") == ThermalZone("acpitz", -5.0)
    assert parse_thermal_line("thermal acpitz") is None
    assert parse_thermal_line("thermal Package id 0 51000") == ThermalZone("Package id 0", 51.0)
    assert hottest([]) is None
    assert hottest([ThermalZone("x", 255.0)]) is None


def test_memory_pressure():
    assert memory_pressure(1 * KB, 4 * KB)
    assert not memory_pressure(8 * KB, 4 * KB)
    assert not memory_pressure(None, 4 * KB)


# ----------------------------------------------------------------- fuzzing


@FUZZ
@given(st.lists(st.text(max_size=80), max_size=40))
def test_arbitrary_lines_never_raise(lines):
    parser = HostStatBlockParser()
    sampler = HostSampler()
    for line in [BLOCK_1.splitlines()[0], *lines, BLOCK_END]:
        snap = parser.feed_line(line)
        if snap is not None:
            sampler.update(snap)
    parse_meminfo("\n".join(lines))


_near_lines = st.sampled_from(
    ["cpu", "cpu0", " 1", " 99999999999999999999999", "MemTotal:", " 12 kB", "thermal", " x",
     " -5", "0.5", " ", "/", "--- end", "--- sparktui-hoststat 1.5", "\t", ":"]
)


@FUZZ
@given(st.lists(st.lists(_near_lines, max_size=6).map("".join), max_size=60))
def test_near_miss_lines_never_raise(lines):
    parser = HostStatBlockParser()
    sampler = HostSampler()
    for snap in parser.feed_lines(lines):
        sampler.update(snap)


_counter = st.integers(min_value=0, max_value=2**40)
_kb = st.integers(min_value=0, max_value=2**40)


@st.composite
def snapshots(draw):
    cpu = CpuTimes(*draw(st.lists(_counter, min_size=10, max_size=10)))
    cores = tuple(
        CpuTimes(*draw(st.lists(_counter, min_size=10, max_size=10)))
        for _ in range(draw(st.integers(0, 4)))
    )
    mem = MemInfo(
        total=draw(_kb) * KB,
        available=draw(st.one_of(st.none(), _kb.map(lambda k: k * KB))),
        cached=draw(st.one_of(st.none(), _kb.map(lambda k: k * KB))),
        shmem=draw(st.one_of(st.none(), _kb.map(lambda k: k * KB))),
    )
    load = draw(st.one_of(st.none(), st.builds(
        LoadAvg,
        st.integers(0, 99999).map(lambda n: n / 100),
        st.integers(0, 99999).map(lambda n: n / 100),
        st.integers(0, 99999).map(lambda n: n / 100),
        st.integers(0, 999), st.integers(0, 99999),
    )))
    zones = tuple(
        ThermalZone(name, milli / 1000)
        for name, milli in draw(st.lists(st.tuples(
            st.sampled_from(["acpitz", "cpu-thermal", "nvme", "mlx5"]),
            st.integers(-50_000, 300_000)), max_size=4))
    )
    t = draw(st.integers(0, 2**40)) / 1000
    return HostSnapshot(t=t, cpu=cpu, cores=cores, mem=mem, load=load, thermal=zones)


def render(snap: HostSnapshot) -> list[str]:
    def cpu_line(label: str, c: CpuTimes) -> str:
        return " ".join([label, *(str(v) for v in (c.user, c.nice, c.system, c.idle, c.iowait,
                                                     c.irq, c.softirq, c.steal, c.guest,
                                                     c.guest_nice))])

    lines = [f"{BLOCK_HEADER} {snap.t:.3f}", cpu_line("cpu ", snap.cpu)]
    lines += [cpu_line(f"cpu{i}", c) for i, c in enumerate(snap.cores)]
    for key, value in (("MemTotal", snap.mem.total), ("MemAvailable", snap.mem.available),
                       ("Cached", snap.mem.cached), ("Shmem", snap.mem.shmem)):
        if value is not None:
            lines.append(f"{key}:{' ' * 8}{value // KB} kB")
    if snap.load is not None:
        load = snap.load
        lines.append(f"{load.load1:.2f} {load.load5:.2f} {load.load15:.2f} "
                     f"{load.running}/{load.tasks} 4242")
    lines += [f"thermal {z.name} {round(z.celsius * 1000)}" for z in snap.thermal]
    lines.append(BLOCK_END)
    return lines


def _inert(line: str) -> bool:
    """Garbage that means nothing inside a block either."""
    stripped = line.strip()
    return (
        not stripped.startswith("---")
        and parse_cpu_line(line) is None
        and parse_thermal_line(line) is None
        and parse_loadavg(line) is None
        and parse_meminfo(line) == MemInfo()
    )


_garbage = st.lists(
    st.one_of(st.text(max_size=60), _near_lines,
              st.just("Xid 79: GPU has fallen off the bus"), st.just("MemTotal: lots")),
    max_size=4,
).map(lambda lines: [g for line in lines for g in line.splitlines()])


@FUZZ
@given(st.data(), st.lists(snapshots(), max_size=5))
def test_intact_blocks_survive_garbage_and_cut_blocks(data, snaps):
    stream: list[str] = []
    for snap in snaps:
        stream += [g for g in data.draw(_garbage) if not g.strip().startswith("---")]
        if data.draw(st.booleans()):
            # A block cut short (the loop restarted): must vanish entirely.
            cut = data.draw(snapshots())
            lines = render(cut)
            stream += lines[: data.draw(st.integers(1, len(lines) - 1))]
        block = render(snap)
        inside = [g for g in data.draw(_garbage) if _inert(g)]
        position = data.draw(st.integers(1, len(block) - 1))
        stream += block[:position] + inside + block[position:]
    stream += [g for g in data.draw(_garbage) if not g.strip().startswith("---")]
    got = HostStatBlockParser().feed_lines(stream)
    assert got == snaps


def _reference_snapshot(t: float, lines: list[str]) -> HostSnapshot | None:
    """A block read the plain way, one per-line parser after the other: the fast
    one-pass reader in hoststat must agree with it on any lines at all."""
    from sparktui.core.hoststat import _Extras
    from sparktui.core.memtruth import parse_pressure

    cpu, cores, load, zones, mem_lines, extras = None, {}, None, [], [], _Extras()
    for line in lines:
        if extras.take(line):
            continue
        if line.startswith("cpu"):
            parsed = parse_cpu_line(line)
            if parsed is not None:
                if parsed[0] is None:
                    cpu = parsed[1]
                elif parsed[0] < 1024:
                    cores[parsed[0]] = parsed[1]
        elif line.startswith("thermal"):
            if (zone := parse_thermal_line(line)) is not None:
                zones.append(zone)
        elif ":" in line:
            mem_lines.append(line)
        elif (parsed_load := parse_loadavg(line)) is not None:
            load = parsed_load
    mem = parse_meminfo("\n".join(mem_lines))
    if cpu is None or mem.total is None:
        return None
    size = max(cores) + 1 if cores else 0
    return HostSnapshot(t=t, cpu=cpu, cores=tuple(cores.get(i) for i in range(size)), mem=mem,
                        load=load, thermal=tuple(zones), boot_id=extras.boot_id,
                        pressure=parse_pressure(extras.psi), buddy=tuple(extras.buddy),
                        rails=tuple(extras.rails), prochot=extras.prochot)


_block_lines = st.lists(st.one_of(
    st.sampled_from(BLOCK_1.splitlines()[1:-1]),
    st.sampled_from(["psi some avg10=1.00 avg60=0.50 avg300=0.10 total=5", "boot abc-1",
                     "buddy Node 0, zone Normal 1 2 3", "rail sys 5000000", "prochot 1",
                     "Buffers: x kB", "cpu99999 1 2 3 4", "cpu1 1 2 3", "\uff17 1.0 2.0"]),
    st.lists(_near_lines, max_size=6).map("".join),
    st.text(max_size=40).filter(lambda s: "\n" not in s)), max_size=40)


@FUZZ
@given(_block_lines)
def test_one_pass_block_reader_agrees_with_the_line_parsers(lines):
    from sparktui.core.hoststat import _build_snapshot

    stripped = [line.strip() for line in lines]  # as the block parser keeps them
    assert _build_snapshot(1.0, stripped) == _reference_snapshot(1.0, stripped)
