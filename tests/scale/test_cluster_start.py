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


class HalfNode:
    """A node whose start is recorded, then goes no further; records being stopped."""

    class Stopped(Exception):
        pass

    def __init__(self) -> None:
        self.killed = False

    def __getattr__(self, name: str) -> Any:
        # Ray's own start of the processes reads the node's attributes: it stops here.
        raise HalfNode.Stopped(name)

    def kill_all_processes(self, **kwargs: Any) -> None:
        self.killed = True


class NodeFlakyCluster(FlakyCluster):
    """Starts every time; its first ``failing_nodes`` nodes start their processes and never
    register."""

    failing_nodes = 1
    tries = 0
    half_started: list[HalfNode] = []

    def add_node(self, **kwargs: Any) -> str:
        from ray._private import node as ray_node

        type(self).tries += 1
        if type(self).tries <= type(self).failing_nodes:
            half = HalfNode()
            type(self).half_started.append(half)
            with pytest.raises(HalfNode.Stopped):
                ray_node.Node.start_ray_processes(half)
            raise RuntimeError("The current node timed out during startup.")
        self.nodes += 1
        return f"node-{self.nodes}"


@pytest.fixture
def node_flaky(
    flaky: type[FlakyCluster], monkeypatch: pytest.MonkeyPatch
) -> type[NodeFlakyCluster]:
    import ray.cluster_utils

    NodeFlakyCluster.starts = NodeFlakyCluster.shutdowns = NodeFlakyCluster.tries = 0
    NodeFlakyCluster.half_started = []
    monkeypatch.setattr(ray.cluster_utils, "Cluster", NodeFlakyCluster)
    return NodeFlakyCluster


def test_a_node_that_does_not_register_is_stopped_and_started_again(
    node_flaky: type[NodeFlakyCluster], caplog: pytest.LogCaptureFixture
) -> None:
    with local.local_cluster(nodes=2) as started:
        assert started.nodes == 2
        # The node again, not the whole cluster; the failed node's processes stopped.
        assert node_flaky.starts == 1 and node_flaky.tries == 2
        assert [h.killed for h in node_flaky.half_started] == [True]
    assert "a Ray node did not start (try 1): The current node timed out" in caplog.text


def test_a_node_that_never_registers_fails_its_cluster_start_after_the_last_try(
    node_flaky: type[NodeFlakyCluster],
) -> None:
    node_flaky.failing_nodes = 10 * local.START_ATTEMPTS
    try:
        with pytest.raises(RuntimeError, match="timed out during startup"):
            with local.local_cluster(nodes=2):
                pass
        # Each cluster start tried its second node START_ATTEMPTS times, and stopped each.
        assert node_flaky.starts == local.START_ATTEMPTS
        assert node_flaky.tries == local.START_ATTEMPTS**2
        assert all(h.killed for h in node_flaky.half_started)
    finally:
        node_flaky.failing_nodes = 1


class Raylet:
    def __init__(self, code: int | None) -> None:
        self.code = code

    def poll(self) -> int | None:
        return self.code


class Info:
    def __init__(self, code: int | None) -> None:
        self.process = Raylet(code)


class Starting:
    """A node whose raylet has ended (``code``) or runs (``None``)."""

    def __init__(self, node_id: str, code: int | None) -> None:
        self._node_id = node_id
        self.all_processes = {"raylet": [Info(code)]}


@pytest.mark.parametrize("code", [1, None])
def test_the_wait_for_a_node_ends_when_its_raylet_ends_or_time_is_up(
    monkeypatch: pytest.MonkeyPatch, code: int | None
) -> None:
    import time

    from ray._private import node as ray_node
    from ray._private import services

    asked: list[str] = []

    def unknown(gcs_address: str, node_id: str) -> None:
        asked.append(node_id)
        raise RuntimeError("node not found")

    monkeypatch.setattr(services, "get_node", unknown)
    monkeypatch.setattr(local, "NODE_START_S", 1.0)
    original = ray_node.Node.start_ray_processes
    with local._patient_node_start() as started:
        started.append(Starting("abc", code))
        begun = time.monotonic()
        with pytest.raises(RuntimeError, match="not found"):
            services.get_node("127.0.0.1:6379", "abc")
        waited = time.monotonic() - begun
    if code is None:  # still running: asked again and again until the time was up
        assert waited >= 1.0 and len(asked) > 1
    else:  # ended: given up at the first answer
        assert waited < 0.5 and len(asked) == 1
    assert services.get_node is unknown and ray_node.Node.start_ray_processes is original
