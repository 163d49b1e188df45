"""The GB10 memory truth: PSI, buddyinfo, rails, PROCHOT, boot id parsers (fuzzed), and
the figures a block of the host stream gives."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from sparktui.core.hoststat import HostSampler, HostStatBlockParser, parse_meminfo
from sparktui.core.memtruth import (
    BuddyZone,
    fragmentation,
    memory_truth,
    parse_boot_id,
    parse_buddy_line,
    parse_pressure,
    parse_pressure_line,
    parse_prochot,
    parse_rail_line,
)

FUZZ = settings(max_examples=300, deadline=None)
GIB = 1024**3

BUDDY = "\n".join([
    "Node 0, zone      DMA      0      0      0      0      0      0      0      0      1    1  3",
    "Node 0, zone    DMA32      2      2      3      2      3      2      1      4      4   2 752",
    "Node 0, zone   Normal    216    118    560   2712    715    196     76     16      6    0  0 ",
])


def test_pressure_lines():
    some = parse_pressure_line("some avg10=12.50 avg60=3.10 avg300=0.80 total=123456")
    assert some is not None and some[0] == "some"
    assert (some[1].avg10, some[1].avg60, some[1].avg300, some[1].total_us) == (
        12.5, 3.1, 0.8, 123456)
    pressure = parse_pressure(["some avg10=1.00 avg60=0.50 avg300=0.10 total=1",
                               "full avg10=0.20 avg60=0.10 avg300=0.00 total=1"])
    assert pressure is not None and pressure.full is not None and pressure.full.avg10 == 0.2
    assert parse_pressure(["garbage"]) is None
    assert parse_pressure_line("some avg10=250.00 avg60=0 avg300=0") is None  # not a share


def test_buddyinfo_high_orders_run_out_in_the_normal_zone():
    zones = [z for line in BUDDY.splitlines() if (z := parse_buddy_line(line))]
    assert [z.zone for z in zones] == ["DMA", "DMA32", "Normal"]
    assert zones[2].free_blocks[3] == 2712
    frag = fragmentation(zones)
    # DMA32 keeps 752 blocks of order 10 forever: it must not hide Normal running out
    assert frag is not None and frag.blocks == 0 and frag.order == 10 and frag.exhausted
    assert frag.warning is not None and "order 10" in frag.warning
    healthy = fragmentation([BuddyZone(0, "Normal", (5,) * 11)])
    assert healthy is not None and healthy.blocks == 5 and healthy.warning is None
    assert fragmentation([]) is None
    # a kernel with fewer orders counts from its top order
    assert fragmentation([BuddyZone(0, "Normal", (1, 2, 3))]).order == 2


def test_rails_prochot_boot():
    assert parse_rail_line("sys_total 45123000").watts == 45.123
    assert parse_rail_line("gpu") is None
    assert parse_prochot("1") is True and parse_prochot("0") is False
    assert parse_prochot("maybe") is None
    assert parse_boot_id("D228B2BA-DDD6-4891-AE04-05B0EDB57DEB\n") == (
        "d228b2ba-ddd6-4891-ae04-05b0edb57deb")
    assert parse_boot_id("not-a-uuid") is None


def test_free_for_cuda_is_memfree_and_reclaim_is_memavailable():
    mem = parse_meminfo("MemTotal: 127526904 kB\nMemFree: 3145728 kB\n"
                        "MemAvailable: 100663296 kB\nBuffers: 100 kB\nCached: 90000000 kB\n"
                        "SReclaimable: 500000 kB\nShmem: 146000 kB\nUnevictable: 30712 kB\n"
                        "Mlocked: 30712 kB\nSwapTotal: 0 kB\nSwapFree: 0 kB\n")
    truth = memory_truth(mem, gpu_processes_bytes=4 * GIB)
    assert truth.free_for_cuda == 3145728 * 1024
    assert truth.available_after_reclaim == 100663296 * 1024
    assert truth.locked == 30712 * 1024 and truth.shared == 146000 * 1024
    assert truth.cache_gap == (100663296 - 3145728) * 1024
    warnings = truth.warnings(free_floor_bytes=8 * GIB)
    assert warnings and "free for CUDA" in warnings[0] and "dropping caches" in warnings[0]
    labels = [label for label, _ in truth.rows()]
    assert "Free for CUDA now (MemFree)" in labels
    assert "Available after reclaim (MemAvailable)" in labels
    data = truth.as_json()
    assert data["free_for_cuda_bytes"] == truth.free_for_cuda
    assert data["pressure"] is None and data["high_order_free_blocks"] is None


def test_a_block_with_gb10_lines():
    block = ["--- sparktui-hoststat 1234.50", "boot d228b2ba-ddd6-4891-ae04-05b0edb57deb",
             "cpu  1 2 3 4 5 6 7 8 0 0", "MemTotal: 1000 kB", "MemFree: 10 kB",
             "psi some avg10=30.00 avg60=10.00 avg300=1.00 total=5",
             *("buddy " + line for line in BUDDY.splitlines()),
             "rail sys_total 45000000", "rail gpu 20000000", "prochot 1", "--- end"]
    snap = HostStatBlockParser().feed_lines(block)[0]
    sample = HostSampler().update(snap)
    assert sample.boot_id == "d228b2ba-ddd6-4891-ae04-05b0edb57deb"
    assert sample.uptime_s == 1234.5 and sample.mem_free == 10 * 1024
    assert sample.pressure is not None and sample.pressure.some.avg10 == 30.0
    assert len(sample.buddy) == 3 and sample.prochot is True
    assert [(r.label, r.watts) for r in sample.rails] == [("sys_total", 45.0), ("gpu", 20.0)]


_psi_like = st.builds(
    lambda kind, a, b, c, t: f"{kind} avg10={a} avg60={b} avg300={c} total={t}",
    st.sampled_from(["some", "full", "none", ""]),
    *(st.one_of(st.floats(allow_nan=True), st.text(max_size=6)) for _ in range(3)),
    st.one_of(st.integers(), st.text(max_size=6)))
_buddy_like = st.builds(
    lambda node, zone, counts: f"Node {node}, zone {zone} " + " ".join(map(str, counts)),
    st.one_of(st.integers(-5, 99999), st.text(max_size=4)), st.text(max_size=12),
    st.lists(st.one_of(st.integers(-10, 2**70), st.text(max_size=3)), max_size=20))


@FUZZ
@given(st.one_of(st.text(max_size=200), _psi_like, _buddy_like))
def test_parsers_never_raise(text):
    for parse in (parse_pressure_line, parse_buddy_line, parse_rail_line, parse_prochot,
                  parse_boot_id):
        parse(text)
    parse_pressure(text.splitlines())
    zone = parse_buddy_line(text)
    if zone is not None:
        assert all(c >= 0 for c in zone.free_blocks)
        assert fragmentation([zone]) is None or fragmentation([zone]).blocks >= 0
    line = parse_pressure_line(text)
    if line is not None:
        assert 0 <= line[1].avg10 <= 100


@FUZZ
@given(st.lists(st.one_of(_psi_like, _buddy_like, st.text(max_size=60)), max_size=30))
def test_blocks_with_hostile_gb10_lines_never_raise(lines):
    block = ["--- sparktui-hoststat 1.0", "cpu  1 2 3 4", "MemTotal: 10 kB",
             *(prefix + line for line in lines
               for prefix in ("psi ", "buddy ", "rail ", "boot ", "prochot "))]
    HostStatBlockParser().feed_lines([*block, "--- end"])
