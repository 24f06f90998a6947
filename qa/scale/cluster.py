"""A real Ray cluster of several nodes on this one machine, for tests and benchmarks.

``ray.cluster_utils.Cluster`` starts a head and more nodes as separate raylets, each with its
own CPUs, object store and workers; Ray schedules across them as across machines. On one host
they share its cores, which a measurement must say.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from qa.scale import require_ray

log = logging.getLogger(__name__)

#: Set for the raylets this process starts (they inherit its environment). On a busy host a
#: node's Python agents can take minutes to start; Ray's default waits are shorter than that
#: and abort the node.
RAY_ENVIRONMENT = {
    "RAY_agent_register_timeout_ms": "600000",
    "RAY_worker_register_timeout_seconds": "600",
    "RAY_USAGE_STATS_ENABLED": "0",
}
#: How long a node may take to register. Ray 2.60 waits a fixed 30 s (a constant in
#: ``ray._private.node``, not a setting), which a niced node on a busy host can miss. A node
#: not registered by then is stopped and started again (``add_node``): one whose raylet never
#: registered kept a CI run waiting the 600 s this once was, then failed it.
NODE_START_S = 180.0

#: How many times a local cluster, or one node of it, is started before its failure is raised,
#: and the pause between tries.
START_ATTEMPTS = 3
START_RETRY_PAUSE_S = 5.0

#: Each node's object store: ample for chunk vectors in flight, small beside the host's memory.
OBJECT_STORE_BYTES = 256 * 1024 * 1024


@contextmanager
def local_cluster(nodes: int = 2, cpus_per_node: int = 1) -> Iterator[Any]:
    """Start ``nodes`` Ray nodes here, connect this process, and take it all down after.

    Yields the ``ray.cluster_utils.Cluster`` (``add_node`` / ``remove_node`` change it). On
    exit Serve (if started) and this process's connection are shut down before the cluster,
    so no Ray process outlives the block.
    """
    require_ray()
    import ray

    for name, value in RAY_ENVIRONMENT.items():
        os.environ.setdefault(name, value)
    cluster = _started(nodes, cpus_per_node)
    try:
        yield cluster
    finally:
        try:
            if ray.is_initialized():
                from ray import serve

                serve.shutdown()
        finally:
            ray.shutdown()
            cluster.shutdown()


def _started(nodes: int, cpus_per_node: int) -> Any:
    """A cluster of ``nodes`` nodes with this process connected, started again (up to
    ``START_ATTEMPTS`` times in all) where a start fails, as one can on a loaded host (a node's
    agents too slow, a port taken meanwhile): what a start left is shut down first."""
    import ray
    from ray.cluster_utils import Cluster

    for attempt in range(1, START_ATTEMPTS + 1):
        cluster = None
        try:
            with _patient_node_start() as started:
                try:
                    cluster = Cluster(
                        initialize_head=True,
                        head_node_args={**_node_args(cpus_per_node), "include_dashboard": False},
                    )
                except BaseException:
                    _stop(started)
                    raise
            for _ in range(nodes - 1):
                add_node(cluster, cpus_per_node)
            ray.init(address=cluster.address, log_to_driver=False)
            return cluster
        except Exception as exc:  # noqa: BLE001 - whatever stopped the start, start again
            log.warning("the local Ray cluster did not start (try %d): %s", attempt, exc)
            ray.shutdown()
            if cluster is not None:
                cluster.shutdown()
            if attempt == START_ATTEMPTS:
                raise
            time.sleep(START_RETRY_PAUSE_S)
    raise AssertionError("unreachable")


def add_node(cluster: Any, cpus: int = 1) -> Any:
    """Start one more node of ``cpus`` CPUs in ``cluster`` and wait until it has registered;
    the node (for ``cluster.remove_node``).

    A node that does not register (its raylet ended, or ``NODE_START_S`` passed) is stopped,
    all its processes, and started again, up to ``START_ATTEMPTS`` times in all.
    """
    for attempt in range(1, START_ATTEMPTS + 1):
        with _patient_node_start() as started:
            try:
                node = cluster.add_node(**_node_args(cpus))
            except Exception as exc:  # noqa: BLE001 - whatever stopped the start, start again
                log.warning("a Ray node did not start (try %d): %s", attempt, exc)
                _stop(started)
                if attempt == START_ATTEMPTS:
                    raise
                time.sleep(START_RETRY_PAUSE_S)
                continue
        cluster.wait_for_nodes()
        return node
    raise AssertionError("unreachable")


def _stop(nodes: list[Any]) -> None:
    """Kill every process of ``nodes`` (nodes whose start failed: ``Cluster`` never got them,
    so its shutdown would leave their processes running)."""
    for node in nodes:
        try:
            node.kill_all_processes(check_alive=False, allow_graceful=False, wait=True)
        except Exception as exc:  # noqa: BLE001 - stop what can be stopped
            log.warning("a failed Ray node's processes could not all be stopped: %s", exc)


def _node_args(cpus: int) -> dict[str, Any]:
    return {"num_cpus": cpus, "object_store_memory": OBJECT_STORE_BYTES, **_agent_ports()}


def _agent_ports() -> dict[str, int]:
    """Free ports for one node's agents, chosen here rather than by the agents.

    Left to choose, each agent writes its port to a file that the node's raylet waits for, and
    the raylet aborts if a slow agent (on a busy host, a niced Python agent can take a minute to
    import) has not written it in time; with the ports given, nothing waits for the files.
    """
    sockets = [socket.socket() for _ in range(4)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        ports = [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()
    names = [
        "metrics_agent_port",
        "metrics_export_port",
        "dashboard_agent_listen_port",
        "runtime_env_agent_port",
    ]
    return dict(zip(names, ports, strict=True))


@contextmanager
def _patient_node_start() -> Iterator[list[Any]]:
    """Let a starting node take up to ``NODE_START_S`` to register, not Ray's fixed 30 s, and
    give up at once when its raylet has ended.

    Ray's start-up loop asks ``services.get_node`` until it answers or 30 s pass; this wraps
    that lookup so that one call keeps asking for longer. Yields the list of the nodes
    (``ray._private.node.Node``) whose processes were started within the block, so that a
    caller can stop those of a node whose start failed.
    """
    from ray._private import node as ray_node
    from ray._private import services
    from ray._private.ray_constants import PROCESS_TYPE_RAYLET

    lookup = services.get_node
    start_processes = ray_node.Node.start_ray_processes
    started: list[Any] = []

    def recorded(self: Any) -> Any:
        started.append(self)
        return start_processes(self)

    def raylet_ended(node_id: Any) -> bool:
        for node in started:
            if getattr(node, "_node_id", None) == node_id:
                raylets = node.all_processes.get(PROCESS_TYPE_RAYLET, [])
                return any(info.process.poll() is not None for info in raylets)
        return False

    def patient(gcs_address: Any, node_id: Any) -> Any:
        begun = time.monotonic()
        while True:
            try:
                return lookup(gcs_address, node_id)
            except RuntimeError:
                if time.monotonic() - begun > NODE_START_S or raylet_ended(node_id):
                    raise
                time.sleep(0.5)

    services.get_node = patient
    ray_node.Node.start_ray_processes = recorded
    try:
        yield started
    finally:
        services.get_node = lookup
        ray_node.Node.start_ray_processes = start_processes
