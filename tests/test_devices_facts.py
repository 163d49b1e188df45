"""Device facts: the parsers (fuzzed), the simulated Spark's answers, a real shell's answers,
ConnectX-7 peer matching, DCGM health and nvidia-smi -q sections."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sparktui.core import facts as core_facts
from sparktui.core.aio import within
from sparktui.core.facts import (
    SECTION,
    facts_command,
    match_links,
    parse_facts,
    split_nvsmi_query,
)
from sparktui.services.config import Settings
from sparktui.services.devices import make_link
from sparktui.services.facts import FactsService
from sparktui.sim.device.gpu_model import SimDevice
from sparktui.sim.device.nvsmi import detail_report
from sparktui.sim.ssh.server import start_sim


async def facts_output(*devices: SimDevice) -> list[str]:
    """What the product's facts script prints on each simulated Spark (a real sh runs it)."""
    import tempfile

    import asyncssh

    outputs = []
    for device in devices:
        server = await start_sim(device=device)
        try:
            with tempfile.TemporaryDirectory() as workdir:
                key, known_hosts = server.write_client_files(workdir)
                async with asyncssh.connect(server.host, server.port, username="spark",
                                            client_keys=[key], known_hosts=known_hosts,
                                            agent_path=None, config=None) as conn:
                    outputs.append((await conn.run(facts_command())).stdout)
        finally:
            await server.close()
    return outputs


async def test_simulated_spark_facts() -> None:
    facts = parse_facts((await facts_output(SimDevice(hostname="spark-a1")))[0])
    assert facts.complete and facts.problems == ()
    assert facts.is_spark and facts.product == "NVIDIA DGX Spark"
    assert (facts.hostname, facts.dgx_os, facts.os_name) == (
        "spark-a1", "7.2.3", "Ubuntu 24.04.3 LTS")
    assert (facts.kernel, facts.arch) == ("6.17.0-1029-nvidia", "aarch64")
    assert (facts.driver_version, facts.cuda_version, facts.compute_cap) == (
        "580.126.09", "13.0", "12.1")
    assert facts.gpu_names == ("NVIDIA GB10",)
    assert facts.cpu_model == "10\u00d7 Cortex-X925 + 10\u00d7 Cortex-A725"
    assert facts.cpu_cores == 20
    assert 120 * 2**30 < facts.mem_total_bytes < 123 * 2**30
    assert facts.root_disk is not None and facts.root_disk.mount == "/"
    # the demo's models (sim.device.root): sparse files as big as the real ones
    assert 60 * 10**9 < facts.cache_bytes < 75 * 10**9
    # no engine attached to this device (the demo attaches one): the daemon is not running
    assert facts.docker_version is None and "Is the docker daemon running?" in (
        facts.docker_problem or "")
    assert facts.ctk_version == "1.17.8"
    assert facts.dcgmi_path is None
    assert [(p.device, p.state) for p in facts.ib_ports] == [
        ("rocep1s0f0", "ACTIVE"), ("rocep1s0f1", "DOWN")]
    active = facts.ib_ports[0]
    assert active.rate_gbps == 200.0 and active.netdevs == ("enp1s0f0np0",)
    assert active.rx_bytes % 4 == 0  # the counters count 4-byte words
    assert any(a.startswith("169.254.") for a in active.addresses)
    assert any(g.startswith("169.254.") for g in active.gids)


def test_a_plain_linux_box_is_not_a_spark() -> None:
    text = "".join(f"\n{SECTION}{name}\n{body}" for name, body in [
        ("hostname", "build-01"), ("kernel", "Linux 6.1.0-18-amd64 x86_64"),
        ("os-release", 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"'),
        ("lscpu", "Model name:  Intel(R) Xeon(R) Gold 6338\nCore(s) per socket: 32\n"
                  "Socket(s): 2"),
        ("nvidia-smi", "sh: 1: nvidia-smi: not found"), ("gpu", "sh: nvidia-smi: not found"),
        ("docker", "permission denied while trying to connect to the Docker daemon socket"),
        ("nvidia-ctk", "absent"), ("dcgmi", "/usr/bin/dcgmi"),
        ("df-root", "Filesystem 1024-blocks Used Available Capacity Mounted on\n"
                    "/dev/sda1 100 40 60 40% /"),
        ("end", "")])
    facts = parse_facts(text)
    assert not facts.is_spark and facts.complete
    assert facts.cpu_model == "Intel(R) Xeon(R) Gold 6338 (64 cores)"
    assert facts.nvidia_smi_problem == "nvidia-smi not found"
    assert facts.docker_version is None and "permission denied" in facts.docker_problem
    assert facts.dcgmi_path == "/usr/bin/dcgmi"
    assert facts.root_disk.used_pct == 40.0
    assert facts.ib_ports == ()


async def test_a_cut_off_read_is_said_to_be_incomplete() -> None:
    text = (await facts_output(SimDevice()))[0]
    facts = parse_facts(text[: text.index(f"{SECTION}docker")])
    assert not facts.complete and facts.problems
    assert facts.driver_version == "580.126.09"
    assert facts.docker_version is None


_SECTIONS = ["hostname", "kernel", "dgx-release", "os-release", "lscpu", "cpuinfo", "nproc",
             "meminfo", "uptime", "df-root", "df-cache", "du-cache", "nvidia-smi", "gpu",
             "docker", "nvidia-ctk", "dcgmi", "infiniband", "addr", "neigh", "end"]
_NOISE = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=300)
_LINES = st.lists(st.one_of(
    _NOISE, st.just("ib\trocep1s0f0\t4: ACTIVE\t200 Gb/sec\t-5\tx\t\tn=aa\tzz,::"),
    st.just("MemTotal: 99999999999999999999 kB"), st.just("Model name: \x1b[31mX"),
    st.just("1: lo inet 1.2.3.4"), st.just("dev x lladdr"), st.just("Core(s) per socket: -1"),
), max_size=8).map("\n".join)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(_SECTIONS), _LINES), max_size=12))
def test_parse_facts_never_raises(sections: list[tuple[str, str]]) -> None:
    text = "".join(f"\n{SECTION}{name}\n{body}" for name, body in sections)
    facts = parse_facts(text)
    for port in facts.ib_ports:
        assert port.rx_bytes is None or port.rx_bytes >= 0
    match_links({"a": facts, "b": facts})


@settings(max_examples=200, deadline=None)
@given(_NOISE)
def test_parsers_never_raise_on_noise(text: str) -> None:
    parse_facts(text)
    split_nvsmi_query(text)
    for parser in (core_facts.parse_lscpu, core_facts.parse_cpuinfo, core_facts.parse_df,
                   core_facts.parse_du, core_facts.parse_uptime, core_facts.parse_docker,
                   core_facts.parse_ctk, core_facts.parse_ip_addr, core_facts.parse_ip_neigh,
                   core_facts.parse_meminfo, core_facts.parse_gpu_query,
                   core_facts.parse_nvidia_smi_header, core_facts.gid_address):
        parser(text)


async def test_cabled_sparks_find_each_other() -> None:
    a, b, c = (SimDevice(hostname=n) for n in ("spark-a", "spark-b", "spark-c"))
    a.cx7_peer, b.cx7_peer = b, a
    facts = {name: parse_facts(text) for name, text in
             zip("ABC", await facts_output(a, b, c), strict=True)}
    peers = match_links(facts)
    assert peers[("A", "rocep1s0f0")].device == "B"
    assert peers[("B", "rocep1s0f0")].device == "A"
    assert peers[("A", "rocep1s0f0")].certain
    assert peers[("A", "rocep1s0f0")].how.startswith("neighbour 169.254.")
    assert ("C", "rocep1s0f0") not in peers  # its neighbour table names nobody here


async def test_two_lone_active_links_are_probably_each_other() -> None:
    texts = await facts_output(SimDevice(hostname="x"), SimDevice(hostname="y"))
    facts = {name: parse_facts(text) for name, text in zip("xy", texts, strict=True)}
    peers = match_links(facts)
    assert peers[("x", "rocep1s0f0")].device == "y"
    assert not peers[("x", "rocep1s0f0")].certain
    three = dict(facts, z=facts["x"])
    assert match_links(three) == {}  # three candidates: no guess


def test_nvidia_smi_query_sections() -> None:
    sim = SimDevice(gpus=1)
    sections = split_nvsmi_query(detail_report(sim.nvidia_smi_reading()))
    titles = [s.title for s in sections]
    assert titles[0] == "Summary"
    assert {"PCI", "FB Memory Usage", "Clocks", "Temperature"} <= set(titles)
    summary = sections[0].body
    assert "Driver Version" in summary and "Product Name" in summary
    pci = next(s for s in sections if s.title == "PCI")
    assert "Bus Id" in pci.body and "PCIe Generation" in pci.body
    two = SimDevice(gpus=2)
    titles = [s.title for s in split_nvsmi_query(detail_report(two.nvidia_smi_reading()))]
    assert sum(t.endswith(": Clocks") for t in titles) == 2


# -- over real connections ---------------------------------------------------------------
@pytest.fixture
async def demo_link() -> AsyncIterator[object]:
    from sparktui.sim.demo import start_demo

    demo = await start_demo()
    link = make_link(demo.spec, Settings(), ssh_options=demo.ssh_options)
    link.start()
    try:
        await within(link.wait_connected(), 20)
        yield link
    finally:
        await link.close()
        await demo.close()


async def test_facts_of_the_demo_spark_are_cached_and_give_rates(demo_link) -> None:
    service = FactsService()
    first = await service.read(demo_link)
    assert first.facts.is_spark and first.throughput == {}
    assert await service.read(demo_link) is first  # cached: no second read
    await asyncio.sleep(0.3)
    second = await service.read(demo_link, refresh=True)
    rx, tx = second.throughput["rocep1s0f0"]
    assert rx > 0 and tx > 0
    assert second.throughput["rocep1s0f1"] == (0.0, 0.0)
    health = await service.health(demo_link)
    assert not health.available and health.ok is None
    assert "DCGM is not installed on spark-demo" in health.message
    sections = await service.nvsmi_sections(demo_link)
    assert sections[0].title == "Summary" and len(sections) > 5


async def test_facts_from_a_real_shell(ssh_client) -> None:
    """The script runs in a real /bin/sh over a real sshd (a Debian box, not a Spark)."""
    from sparktui.core.device import DeviceSpec

    link = make_link(DeviceSpec("spark-test", "spark-test"), Settings())
    link.start()
    try:
        await within(link.wait_connected(), 20)
        reading = await FactsService().read(link)
        health = await FactsService().health(link)
    finally:
        await link.close()
    facts = reading.facts
    assert facts.complete, facts
    assert facts.hostname and facts.kernel and facts.arch and facts.os_name
    assert facts.cpu_model and facts.cpu_cores and facts.mem_total_bytes
    assert facts.root_disk is not None and facts.uptime_s
    # the test sshd puts the simulator's nvidia-smi stand-in first on PATH
    assert facts.driver_version == "580.126.09" and facts.cuda_version == "13.0"
    assert facts.is_spark  # its GPU says GB10
    assert health.available is (facts.dcgmi_path is not None)


def test_the_command_is_one_sh_invocation() -> None:
    command = facts_command()
    assert command.startswith("sh -c '") and command.endswith(" sparktui-facts")
