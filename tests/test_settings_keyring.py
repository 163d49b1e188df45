"""Secrets only through keyring: a real Secret Service headless, and the no-backend message."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import keyring
import keyring.core
import pytest

from sparktui.services.secrets import SecretStore, SecretsUnavailable, no_backend_message
from tests.infra.common import require
from tests.infra.keyring import SecretServiceSession, secret_service_available


def _redetect_backend() -> None:
    # keyring lists viable backends once per process (jaraco `once`) and picks one at
    # import: make it look again at this environment
    import keyring.backend

    with contextlib.suppress(KeyError):  # nothing cached yet
        keyring.backend.get_all_keyring.reset()
    keyring.core.init_backend()


@pytest.fixture
def secret_service(monkeypatch) -> Iterator[SecretServiceSession]:
    ok, why = secret_service_available()
    require(ok, why)
    session = SecretServiceSession().start()
    try:
        for name, value in session.env.items():
            monkeypatch.setenv(name, value)
        monkeypatch.delenv("PYTHON_KEYRING_BACKEND", raising=False)
        _redetect_backend()
        yield session
    finally:
        session.stop()
        monkeypatch.undo()
        _redetect_backend()


@pytest.fixture
def no_dbus(monkeypatch, tmp_path) -> Iterator[None]:
    monkeypatch.delenv("DBUS_SESSION_BUS_ADDRESS", raising=False)
    monkeypatch.delenv("PYTHON_KEYRING_BACKEND", raising=False)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))  # no session bus socket there
    monkeypatch.setenv("HOME", str(tmp_path))
    _redetect_backend()
    yield
    monkeypatch.undo()
    _redetect_backend()


async def test_secret_service_stores_and_reads_a_secret(secret_service) -> None:
    store = SecretStore(environ={}, service="sparktui-test")
    assert await store.problem() is None
    await store.set("HF_TOKEN", "hf_secret_value")
    assert await store.get("HF_TOKEN") == "hf_secret_value"
    found = await store.lookup("HF_TOKEN")
    assert (found.value, found.source) == ("hf_secret_value", "keyring")
    assert "hf_secret_value" not in repr(found)
    # what keyring itself sees: the Secret Service holds it, not a file of ours
    assert keyring.get_password("sparktui-test", "HF_TOKEN") == "hf_secret_value"
    await store.delete("HF_TOKEN")
    assert await store.get("HF_TOKEN") is None
    await store.delete("HF_TOKEN")  # deleting twice is not an error


async def test_no_backend_says_so_and_offers_the_environment(no_dbus, tmp_path) -> None:
    store = SecretStore(environ={}, service="sparktui-test")
    problem = await store.problem()
    assert problem is not None and "no backend" in problem
    with pytest.raises(SecretsUnavailable) as caught:
        await store.set("NGC_API_KEY", "nvapi-xyz")
    message = str(caught.value)
    assert "No keyring backend is available" in message
    assert "export NGC_API_KEY=" in message
    # never a silent plaintext fallback: nothing was written under HOME
    assert not any("nvapi-xyz" in p.read_text(errors="ignore")
                   for p in tmp_path.rglob("*") if p.is_file())
    assert await store.get("NGC_API_KEY") is None
    found = await SecretStore(environ={"NGC_API_KEY": "from-env"}).lookup("NGC_API_KEY")
    assert (found.value, found.source) == ("from-env", "environment")
    assert "HF_TOKEN" in no_backend_message("HF_TOKEN")
