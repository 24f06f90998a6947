"""Starting the local Ray cluster again where a start fails (no cluster is started here: Ray's
``Cluster`` is replaced by a stand-in whose first start fails as a slow node's can)."""

from __future__ import annotations

from typing import Any

import pytest

ray = pytest.importorskip("ray", reason="the scale extra (ray[data,serve]) is not installed")

from qa.scale import cluster as local  # noqa: E402 - after the skip


class FlakyCluster:
    """Fails to add a node on its first start; counts starts and shutdowns."""

    starts = 0
    shutdowns = 0
    failing_starts = 1

    def __init__(self, **kwargs: Any) -> None:
        type(self).starts += 1
        self.address = "127.0.0.1:6379"
        self.nodes = 1

    def add_node(self, **kwargs: Any) -> str:
        if type(self).starts <= type(self).failing_starts:
            raise RuntimeError("node did not register in time")
        self.nodes += 1
        return f"node-{self.nodes}"

    def wait_for_nodes(self) -> None:
        pass

    def shutdown(self) -> None:
        type(self).shutdowns += 1


@pytest.fixture
def flaky(monkeypatch: pytest.MonkeyPatch) -> type[FlakyCluster]:
    import ray.cluster_utils

    FlakyCluster.starts = FlakyCluster.shutdowns = 0
    monkeypatch.setattr(ray.cluster_utils, "Cluster", FlakyCluster)
    monkeypatch.setattr(ray, "init", lambda **kwargs: None)
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(local, "START_RETRY_PAUSE_S", 0.0)
    return FlakyCluster


def test_a_failed_start_is_shut_down_and_started_again(
    flaky: type[FlakyCluster], caplog: pytest.LogCaptureFixture
) -> None:
    with local.local_cluster(nodes=2) as started:
        assert started.nodes == 2
        assert flaky.starts == 2 and flaky.shutdowns == 1  # the failed start's, before the retry
    assert flaky.shutdowns == 2
    assert "did not start (try 1): node did not register in time" in caplog.text


def test_a_start_that_keeps_failing_raises_after_the_last_try(
    flaky: type[FlakyCluster],
) -> None:
    flaky.failing_starts = local.START_ATTEMPTS
    try:
        with pytest.raises(RuntimeError, match="did not register"):
            with local.local_cluster(nodes=2):
                pass
        assert flaky.starts == local.START_ATTEMPTS == flaky.shutdowns
    finally:
        flaky.failing_starts = 1
