"""What runs left behind in the engine: containers of runs whose process is gone, untagged images.

Every container a run starts carries the host and pid of the harness process that started it
(labels), so a later run or `doctor --cleanup` can tell a leftover from a container another run on
this machine is still using. Containers started from another machine (a shared remote engine) are
never touched.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Protocol

from harness.engine import LABEL_BASE, LABEL_HOST, LABEL_MANAGED, LABEL_PID, ContainerInfo
from harness.runstate import host_name


class Housekeeping(Protocol):
    """What sweeping leftovers needs from the engine."""

    def containers(self, labels: Mapping[str, str]) -> list[ContainerInfo]:
        """Every container carrying all the labels."""

    def remove_container_ids(self, ids: list[str]) -> int:
        """Remove containers; how many are gone."""

    def dangling_images(self, labels: Mapping[str, str]) -> list[str]:
        """Untagged images carrying all the labels."""

    def remove_images(self, ids: list[str]) -> list[str]:
        """Remove images (unforced); the removed ids."""


def owner_labels() -> dict[str, str]:
    """Labels naming this process, put on every container it starts."""
    return {LABEL_HOST: host_name(), LABEL_PID: str(os.getpid())}


def process_alive(pid: int) -> bool:
    """Whether a process with this pid exists on this machine."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def is_stale(container: ContainerInfo, host: str) -> bool:
    """A managed container whose run is gone: its process (on this host) no longer exists, or, for a
    container without owner labels, it has stopped (a live run removes its containers as they end)."""
    owner, pid = container.labels.get(LABEL_HOST), container.labels.get(LABEL_PID)
    if owner is None or pid is None:
        return not container.running
    return owner == host and pid.isdigit() and not process_alive(int(pid))


def stale_containers(engine: Housekeeping, *, builds: bool = False) -> list[ContainerInfo]:
    """Managed containers of dead runs; with `builds`, also stopped containers a failed image build left."""
    host = host_name()
    found = [c for c in engine.containers({LABEL_MANAGED: "true"}) if is_stale(c, host)]
    if builds:
        # A build step's container stops before its layer is committed: only long-stopped ones are leftovers.
        found += [c for c in engine.containers({LABEL_BASE: ""})
                  if c.stopped_long_ago() and LABEL_MANAGED not in c.labels]
    return sorted(found, key=lambda c: c.name)


def remove_stale_containers(engine: Housekeeping, *, builds: bool = False) -> int:
    """Remove what stale_containers finds; how many are gone."""
    return engine.remove_container_ids([c.id for c in stale_containers(engine, builds=builds)])


def dangling_images(engine: Housekeeping) -> list[str]:
    """Untagged images of harness builds: replaced environment images and failed builds' layers."""
    return sorted({*engine.dangling_images({LABEL_MANAGED: "true"}), *engine.dangling_images({LABEL_BASE: ""})})
