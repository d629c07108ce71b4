"""A package index for unit tests: what PyPI serves of TensorFlow, Keras and tf-keras (files named as PyPI names
them), answered from memory. No unit test reaches a real index: conftest.py puts this one in place of
wheelcache.Upstream for the version selectors."""

from __future__ import annotations

from harness.wheelcache import Link

TF = "tensorflow_cpu-{v}-cp{py}-cp{py}-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"
# TensorFlow releases and the Pythons each has wheels for (as PyPI serves them).
TENSORFLOW = {
    "2.12.1": ("38", "39", "310", "311"), "2.13.1": ("38", "39", "310", "311"), "2.14.1": ("39", "310", "311"),
    "2.15.1": ("39", "310", "311"), "2.16.2": ("39", "310", "311", "312"), "2.17.1": ("39", "310", "311", "312"),
    "2.18.1": ("39", "310", "311", "312"), "2.19.1": ("39", "310", "311", "312"),
    "2.20.0": ("39", "310", "311", "312", "313"), "2.21.0": ("310", "311", "312", "313"),
    "2.22.0rc0": ("310", "311", "312", "313"),
}
# Keras releases and the Python they require.
KERAS = {**dict.fromkeys(("3.0.5", "3.3.3", "3.5.0", "3.8.0", "3.10.0"), ">=3.9"),
         **dict.fromkeys(("3.11.3", "3.12.0", "3.12.4"), ">=3.10"),
         **dict.fromkeys(("3.13.2", "3.14.1", "3.15.0", "3.15.1"), ">=3.11")}
TF_KERAS = ("2.15.1", "2.16.0", "2.17.0", "2.18.0", "2.19.0", "2.20.1", "2.21.0")


def link(filename: str, **attributes: str) -> Link:
    """A file of a project page."""
    return Link(filename, f"https://files.example/{filename}", None, attributes)


class FakeIndex:
    """A package index answering from a dict of project -> links; `answers` False: unreachable."""

    def __init__(self) -> None:
        self.answers = True
        self.asked: list[str] = []
        self.projects: dict[str, list[Link]] = {"keras": [], "tensorflow-cpu": [], "tf-keras": []}
        for version, pythons in TENSORFLOW.items():
            self.tensorflow(version, *pythons)
        for version, python in KERAS.items():
            self.keras(version, python)
        self.projects["tf-keras"] += [link(f"tf_keras-{v}-py3-none-any.whl") for v in TF_KERAS]

    def keras(self, version: str, python: str) -> None:
        """A Keras release with a file for the Pythons `python` allows."""
        self.projects["keras"].append(link(f"keras-{version}-py3-none-any.whl", **{"data-requires-python": python}))

    def tensorflow(self, version: str, *pythons: str) -> None:
        """A tensorflow-cpu release with a wheel for each Python (as cp311, ...)."""
        self.projects["tensorflow-cpu"] += [link(TF.format(v=version, py=py)) for py in pythons]

    def project(self, project: str) -> tuple[list[Link], bool]:
        """Every file of a project, and whether the index answered."""
        self.asked.append(project)
        return (self.projects.get(project, []), True) if self.answers else ([], False)
