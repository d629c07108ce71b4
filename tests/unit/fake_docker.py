"""FakeEngine plus what doctor and the leftover sweep ask of Docker: containers, untagged images, docker info."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from fake_engine import FakeEngine
from harness.engine import ContainerInfo


class FakeDocker(FakeEngine):
    """FakeEngine plus what doctor and the sweep ask: containers, untagged images, docker info."""

    def __init__(self, containers: Sequence[ContainerInfo] = (), dangling: Mapping[str, list[str]] | None = None,
                 endpoint: str = "unix:///var/run/docker.sock", root: str = "/") -> None:
        super().__init__()
        self.listed = list(containers)
        self.dangling = dict(dangling or {})
        self.where = endpoint
        self.root = root
        self.removed_ids: list[str] = []

    def containers(self, labels: Mapping[str, str]) -> list[ContainerInfo]:
        return [c for c in self.listed if all(k in c.labels and (not v or c.labels[k] == v)
                                              for k, v in labels.items())]

    def remove_container_ids(self, ids: list[str]) -> int:
        self.removed_ids += ids
        self.listed = [c for c in self.listed if c.id not in ids]
        return len(ids)

    def dangling_images(self, labels: Mapping[str, str]) -> list[str]:
        return [i for key in labels for i in self.dangling.get(key, [])]

    def remove_images(self, ids: list[str]) -> list[str]:
        self.dangling = {k: [i for i in v if i not in ids] for k, v in self.dangling.items()}
        return ids

    def info(self) -> dict[str, object]:
        return {"ServerVersion": "27.0", "DockerRootDir": self.root, "Runtimes": {"runc": {}, "runsc": {}}}

    def endpoint(self) -> str:
        return self.where
