"""Group 4 for `--prometheus URL`: a server that is not Prometheus cannot hold the client.

The hostile server (tests/reliability/hostile_http.py) sends endless JSON, an
endless error body, or trickles one byte at a time; the source must stop after
a few MB, or at its whole-answer deadline, with a message that says which.
"""

from __future__ import annotations

import time

import pytest

from sparktui.services.promsource import MAX_ANSWER_BYTES, PrometheusError, PrometheusSource
from tests.reliability.hostile_http import HostileServer


# The endless answers get a deadline long enough for 32 MiB over loopback on a loaded
# 2-core machine, so it is the size bound under test, not the clock (CI once read too
# slowly and got the deadline's message instead).
@pytest.mark.parametrize(("mode", "expected", "deadline"), [
    ("endless-json", "not read further", 30.0),
    ("endless-error", "not read further", 30.0),
    ("trickle-json", "no complete answer within 2 s", 2.0),
])
async def test_a_hostile_prometheus_costs_little_and_says_why(mode: str, expected: str,
                                                             deadline: float) -> None:
    server = await HostileServer(mode).start()
    source = PrometheusSource(server.url, timeout=deadline / 2, deadline=deadline)
    started = time.monotonic()
    try:
        with pytest.raises(PrometheusError) as caught:
            await source.latest()
    finally:
        await source.close()
        await server.close()
    took = time.monotonic() - started
    print(f"{mode}: {took:.1f} s, {server.requests} requests, server sent "
          f"{server.sent >> 20} MiB: {caught.value}")
    assert expected in str(caught.value)
    # each query took at most its limit (plus what was in flight); old code read on forever
    assert server.sent < server.requests * (MAX_ANSWER_BYTES + 16 * 1024 * 1024)
    assert took < server.requests * deadline + 5  # each query ended at its bound
