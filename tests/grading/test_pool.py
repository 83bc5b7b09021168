"""The warm pool of single-use sandboxes (real bubblewrap sandboxes): each serves one submission and is replaced in
the background, several replacements warm at once where the machine has cores for them, and a sandbox that cannot
start is reported without spinning."""

from __future__ import annotations

import pytest

from grading.pool import WarmPool
from grading.sandbox import SandboxConfig, SandboxUnavailable
from tests.grading.conftest import TEST_MEMORY_MB, TEST_TIMEOUT_S

pytestmark = pytest.mark.sandbox
PROBE = "def probe(ns, device):\n    return {'answer': ns['answer']}\n"


def config(**overrides):
    return lambda: SandboxConfig.from_settings(timeout_s=TEST_TIMEOUT_S, memory_mb=TEST_MEMORY_MB, **overrides)


@pytest.fixture
def make_pool():
    pools: list[WarmPool] = []

    def make(*args, **kwargs) -> WarmPool:
        pools.append(WarmPool(*args, **kwargs))
        return pools[-1]

    yield make
    for pool in pools:
        pool.close()


def test_each_sandbox_serves_one_submission_and_is_replaced(make_pool):
    pool = make_pool(1, config(), defer_refill_while_busy=False)
    assert pool.wait_full(timeout=240)

    first = pool.lease()
    # The sandbox warmed in the background was still alive: none died while idle and had to be replaced.
    assert pool.started_total == 1
    outcome = first.run("answer = 41 + 1", PROBE)
    pool.returned()

    assert outcome.status == "ok" and outcome.measurements == {"answer": 42}
    with pytest.raises(Exception, match="exactly one submission"):
        first.run("answer = 0", PROBE)
    assert pool.wait_full(timeout=240)
    second = pool.lease()
    assert second is not first and pool.started_total == 2
    assert second.run("answer = 7", PROBE).measurements == {"answer": 7}
    pool.returned()


def test_a_drained_pool_warms_its_replacements_at_once(make_pool):
    pool = make_pool(3, config(), defer_refill_while_busy=False, warming=3)

    assert pool.wait_full(timeout=300)
    assert pool.peak_warming == 3  # not one after the other


def test_small_machines_warm_one_sandbox_at_a_time(make_pool):
    pool = make_pool(2, config(), defer_refill_while_busy=True, warming=8)

    assert pool.max_warming == 1
    assert pool.wait_full(timeout=300)
    assert pool.peak_warming == 1


def test_warming_at_once_never_exceeds_the_pool_size():
    pool = WarmPool(2, config(), defer_refill_while_busy=False, warming=16)
    assert pool.max_warming == 2


def test_a_sandbox_that_cannot_start_is_reported_and_retried_with_a_backoff(make_pool):
    pool = make_pool(2, config(bwrap_path="/nonexistent/bwrap"), defer_refill_while_busy=False, warming=2)

    with pytest.raises(SandboxUnavailable, match="not installed"):
        pool.lease(timeout=30)
    assert not pool.wait_full(timeout=5)
    assert pool.ready_count == 0 and pool.started_total == 0


def test_a_broken_configuration_is_reported_to_the_lease_and_the_refiller_lives_on(make_pool):
    broken = [True]
    working = config()

    def configured():
        if broken[0]:
            raise RuntimeError("GRADING_MEMORY_MB is not a number")
        return working()

    pool = make_pool(1, configured, defer_refill_while_busy=False)
    with pytest.raises(RuntimeError, match="not a number"):
        pool.lease(timeout=30)

    broken[0] = False  # the operator fixes it: the same pool warms sandboxes again (after its backoff)
    assert pool.wait_full(timeout=240)
