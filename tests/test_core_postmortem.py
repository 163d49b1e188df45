"""Post-mortem evidence, its classification, Xid lines and the power checks (fuzzed parsers)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from sparktui.core.gpuhealth import ReasonCounter, StuckLowPower, parse_xid, xid_meaning
from sparktui.core.nvsmi import GpuSample
from sparktui.core.postmortem import Cause, Evidence, classify, notable_lines, parse_evidence

FUZZ = settings(max_examples=300, deadline=None)
OLD = "11111111-2222-4333-8444-555555555555"
NEW = "66666666-7777-4888-8999-aaaaaaaaaaaa"

NVRM = ("Dec 03 10:00:01 spark kernel: NVRM: nvAssertOkFailedNoLog: Assertion failed: Out of "
        "memory [NV_ERR_NO_MEMORY] (0x00000051) returned from _memdescAllocInternal")
XID = "Dec 03 10:00:02 spark kernel: NVRM: Xid (PCI:000f:01:00): 79, pid=1234, GPU has fallen off"


def output(boot: str, journal: list[str], pstore: dict[str, str] | None = None,
           status: int = 0) -> str:
    lines = [f"boot {boot}", "uptime 63.20", "--- journal", *journal,
             f"--- journal-status {status}", "--- pstore"]
    for name, text in (pstore or {}).items():
        lines += [f"=== file {name}", text]
    return "\n".join([*lines, "--- end"]) + "\n"


def test_evidence_is_parsed_section_by_section():
    ev = parse_evidence(output(NEW, ["-- Boot abc --", NVRM, XID],
                               {"dmesg-ramoops-0": "Panic#1\nKernel panic - not syncing"}))
    assert ev.boot_id == NEW and ev.uptime_s == 63.2
    assert ev.journal == (NVRM, XID)  # journalctl's "-- Boot" separators dropped
    assert "Kernel panic" in ev.pstore["dmesg-ramoops-0"]
    missing = parse_evidence(output(NEW, ["No journal files were found."], status=1))
    assert missing.journal == () and "could not be read" in missing.journal_problem


def test_each_drop_is_classified_with_its_evidence():
    gpu = classify(OLD, parse_evidence(output(NEW, ["boring line", NVRM, XID])), 86_400)
    assert gpu.cause is Cause.GPU_WEDGE and NVRM.strip() in gpu.evidence
    assert "Xid 79" in gpu.summary and "24.0 h" in gpu.summary
    oom = classify(OLD, parse_evidence(output(NEW, [
        "kernel: python3 invoked oom-killer: gfp_mask=0x140dca, order=0",
        "kernel: Out of memory: Killed process 4242 (python3)"])))
    assert oom.cause is Cause.OOM and len(oom.evidence) == 2
    panic = classify(OLD, parse_evidence(output(NEW, ["kernel: ok"], {
        "dmesg-ramoops-0": "<0>Kernel panic - not syncing: Fatal exception"})))
    assert panic.cause is Cause.PANIC and "pstore dmesg-ramoops-0" in panic.evidence[0]
    network = classify(OLD, parse_evidence(output(OLD, [])))
    assert network.cause is Cause.NETWORK and not network.rebooted
    power = classify(OLD, parse_evidence(output(NEW, ["kernel: usb 1-1: new device",
                                                      "kernel: EXT4-fs (nvme0n1p2): re"])))
    assert power.cause is Cause.POWER and power.rebooted
    clean = classify(OLD, parse_evidence(output(NEW, ["kernel: reboot: Restarting system"])))
    assert clean.cause is Cause.CLEAN
    assert notable_lines(["a", NVRM, "b"]) == [NVRM]
    assert classify(None, Evidence()).cause is Cause.POWER  # nothing known: no trace


def test_xid_lines_and_their_meaning():
    xid = parse_xid(XID)
    assert xid is not None and xid.xid == 79 and "fallen off the bus" in xid.meaning
    assert parse_xid("Xid (PCI:0000:01:00): 13, Graphics Exception").xid == 13
    assert parse_xid("no event here") is None
    assert "catalogue" in xid_meaning(9999)


def sample(t: float, clock: float | None, util: float | None, pstate: str = "P0",
           reasons: int | None = 0) -> GpuSample:
    return GpuSample(index=0, t=t, sm_clock_mhz=clock, util_gpu=util, pstate=pstate,
                     event_reasons=reasons)


def test_stuck_low_power_needs_30_seconds_of_low_clock_at_high_utilisation():
    watch = StuckLowPower()
    assert all(watch.update(sample(t, 611, 97)) is None for t in range(30))
    advice = watch.update(sample(30, 611, 97))
    assert advice is not None and "AC power cycle" in advice and "611 MHz" in advice
    assert watch.update(sample(31, 611, 97)) is None  # said once
    fresh = StuckLowPower()
    for t in range(40):  # idle, P8, a normal clock or unknown values never trigger it
        assert fresh.update(sample(t, 611, 10)) is None
        assert fresh.update(sample(t, 2400, 97)) is None
        assert fresh.update(sample(t, None, 97)) is None
    assert StuckLowPower().update(sample(0, 500, 99, pstate="P8")) is None


def test_event_reasons_are_counted_in_seconds():
    counter = ReasonCounter()
    for t in range(11):
        counter.update(sample(float(t), 2400, 99, reasons=0x4 | (0x20 if t > 5 else 0)))
    assert counter.seconds[0]["SW power cap"] == 10.0
    assert counter.seconds[0]["SW thermal slowdown"] == 5.0
    assert counter.describe(0).startswith("SW power cap 10 s")


@FUZZ
@given(st.text(max_size=400))
def test_xid_parser_never_raises(text):
    xid = parse_xid(text)
    assert xid is None or 0 <= xid.xid <= 9999


_sections = st.lists(st.one_of(
    st.sampled_from(["--- journal", "--- pstore", "--- end", "--- journal-status 0",
                     "--- journal-status x", f"boot {NEW}", "uptime 12.5", "uptime nan",
                     "=== file dmesg-ramoops-0", "=== file ../../etc/passwd", NVRM, XID,
                     "Kernel panic - not syncing", "invoked oom-killer"]),
    st.text(max_size=80)), max_size=60)


@FUZZ
@given(_sections, st.sampled_from([None, OLD, NEW]))
def test_evidence_parser_and_classifier_never_raise(lines, previous):
    evidence = parse_evidence("\n".join(lines))
    assert all("/" not in name for name in evidence.pstore)
    verdict = classify(previous, evidence, 100.0)
    assert isinstance(verdict.cause, Cause)
    assert len(verdict.evidence) <= 40
