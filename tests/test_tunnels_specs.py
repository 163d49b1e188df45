"""Tunnel specs without a network: SPEC parsing, the [[tunnels]] table, ports, the browser."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sparktui.services.tunnel_specs import (
    PRESETS,
    TunnelSpec,
    TunnelSpecError,
    delete_tunnel,
    has_browser,
    load_tunnels,
    local_url,
    parse_forward_spec,
    parse_reverse_spec,
    pick_local_port,
    preset,
    save_tunnel,
)


def test_presets_cover_the_usual_spark_services() -> None:
    ports = {p.key: p.port for p in PRESETS}
    assert ports == {"dashboard": 11000, "jupyter": 8888, "tensorboard": 6006,
                     "ollama": 11434, "vllm": 8000, "sglang": 30000, "model-runner": 12434,
                     "open-webui": 12000, "comfyui": 8188}
    assert preset("dashboard").path == "/"  # type: ignore[union-attr]
    assert preset("NIM") is preset("vllm")


@pytest.mark.parametrize(("text", "expected"), [
    ("8888", ("8888", "localhost", 8888, None)),
    ("9000:8000", ("8000", "localhost", 8000, 9000)),
    ("9000:10.0.0.5:8000", ("10.0.0.5:8000", "10.0.0.5", 8000, 9000)),
    ("dashboard", ("dashboard", "localhost", 11000, None)),
    ("ollama", ("ollama", "localhost", 11434, None)),
])
def test_forward_specs(text: str, expected: tuple) -> None:
    spec = parse_forward_spec(text, "spark-1")
    assert (spec.name, spec.remote_host, spec.remote_port, spec.local_port) == expected
    assert spec.device == "spark-1" and spec.bind == "127.0.0.1" and not spec.reverse


@pytest.mark.parametrize("text", ["", "x", "1:2:3:4", "0", "70000", "a:80", "9000::80"])
def test_bad_forward_specs_say_what_works(text: str) -> None:
    with pytest.raises(TunnelSpecError, match=r"REMOTE|out of range"):
        parse_forward_spec(text, "spark-1")


def test_reverse_specs() -> None:
    spec = parse_reverse_spec("9000:3000", "spark-1")
    assert (spec.remote_port, spec.local_port, spec.bind, spec.reverse) == (9000, 3000,
                                                                           "127.0.0.1", True)
    assert not spec.wide_bind
    with pytest.raises(TunnelSpecError):
        parse_reverse_spec("9000", "spark-1")


def test_wide_binds_are_flagged_and_urls_stay_reachable() -> None:
    wide = TunnelSpec(device="d", name="n", remote_port=80, local_port=8080, bind="0.0.0.0")
    assert wide.wide_bind
    assert not TunnelSpec(device="d", name="n", remote_port=80, bind="::1").wide_bind
    assert local_url("0.0.0.0", 8080) == "http://127.0.0.1:8080/"
    assert local_url("::1", 8080, "/lab") == "http://[::1]:8080/lab"


def test_pick_local_port_takes_the_next_free_one() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        chosen = pick_local_port("127.0.0.1", busy)
        assert chosen != busy


@pytest.mark.parametrize(("env", "platform", "expected"), [
    ({"DISPLAY": ":0"}, "linux", True),
    ({"WAYLAND_DISPLAY": "wayland-0"}, "linux", True),
    ({}, "linux", False),
    ({"DISPLAY": ":0", "SSH_CONNECTION": "1.2.3.4 5 6.7.8.9 22"}, "linux", False),
    ({}, "darwin", True),
    ({"SSH_CONNECTION": "1.2.3.4 5 6.7.8.9 22"}, "darwin", False),
])
def test_headless_detection(env: dict, platform: str, expected: bool) -> None:
    assert has_browser(env, platform) is expected


def test_save_update_delete_keep_the_users_comments(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text("# my sparktui config\n[settings]\ntheme = \"sparktui-light\"  # light\n\n"
                    "[[tunnels]]\n# the dashboard, always\ndevice = \"spark-1\"\n"
                    "name = \"dashboard\"\npreset = \"dashboard\"\n")
    jupyter = TunnelSpec(device="spark-1", name="jupyter", remote_port=8888, local_port=8889,
                         preset="jupyter")
    save_tunnel(path, jupyter)
    specs, problems = load_tunnels(path)
    assert problems == []
    assert [s.name for s in specs] == ["dashboard", "jupyter"]
    assert specs[1] == jupyter

    moved = TunnelSpec(device="spark-1", name="lab", remote_port=8888, local_port=9999,
                       preset="jupyter")
    save_tunnel(path, moved, replaces=jupyter.key)
    specs, _ = load_tunnels(path)
    assert [s.name for s in specs] == ["dashboard", "lab"] and specs[1].local_port == 9999

    delete_tunnel(path, ("spark-1", "dashboard"))
    text = path.read_text()
    assert "# my sparktui config" in text and "# light" in text
    specs, _ = load_tunnels(path)
    assert [s.name for s in specs] == ["lab"]


def test_bad_tunnel_tables_are_reported_not_fatal(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('[[tunnels]]\ndevice = "d"\nname = "a"\nremote_port = 99999\n\n'
                    '[[tunnels]]\ndevice = "d"\nname = "b"\nremote_port = 80\ncolour = 1\n\n'
                    '[[tunnels]]\ndevice = "d"\nname = "c"\nremote_port = 80\n\n'
                    '[[tunnels]]\ndevice = "d"\nname = "c"\nremote_port = 81\n')
    specs, problems = load_tunnels(path)
    assert [s.name for s in specs] == ["c"]
    assert len(problems) == 3
    assert "remote_port 99999 is out of range" in problems[0]
    assert "unknown key(s) colour" in problems[1]
    assert "a second 'c'" in problems[2]
    path.write_text("not toml [")
    assert "not valid TOML" in load_tunnels(path)[1][0]


_names = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=20) \
    .filter(str.strip)
_specs = st.builds(
    TunnelSpec, device=_names, name=_names, remote_port=st.integers(1, 65535),
    remote_host=st.sampled_from(["localhost", "127.0.0.1", "10.0.0.7", "::1"]),
    local_port=st.none() | st.integers(1, 65535),
    bind=st.sampled_from(["127.0.0.1", "0.0.0.0", "[::1]"]), reverse=st.booleans(),
    preset=st.none() | st.sampled_from([p.key for p in PRESETS]), autostart=st.booleans())


@settings(max_examples=60, deadline=None)
@given(_specs)
def test_any_spec_survives_the_config_file(tmp_path_factory, spec: TunnelSpec) -> None:
    path = tmp_path_factory.mktemp("tunnel") / "config.toml"
    save_tunnel(path, spec)
    specs, problems = load_tunnels(path)
    assert problems == [] and specs == [spec]


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from(["device", "name", "remote_port", "local_port", "bind",
                                        "reverse", "preset", "autostart", "remote_host", "x"]),
                       st.none() | st.booleans() | st.integers(-5, 70000) | st.text(max_size=8)))
def test_any_table_gives_a_spec_or_a_clear_error(raw: dict) -> None:
    table = {key: value for key, value in raw.items() if value is not None}
    try:
        TunnelSpec.from_table(table)
    except TunnelSpecError as exc:
        assert str(exc)
