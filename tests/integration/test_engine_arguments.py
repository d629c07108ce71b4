"""`docker run` arguments as the real Docker client reads them: a mount source holding commas, quotes and '=' is
mounted by its whole name (never the folder a crafted name spells), and a checkout's .git is hidden from the
containers that mount its code."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.engine import DockerCLI, Mount, RunSpec

pytestmark = pytest.mark.integration

IMAGE = "harness-base:3.11"  # any image with a Python; the base images are built before TensorFlow's
READ = ("import os, sys\n"
        "for path in sys.argv[1:]:\n"
        "    print(path, '=>', open(path).read().strip() if os.path.isfile(path) else sorted(os.listdir(path)))\n")


@pytest.fixture(scope="module")
def engine(docker: None) -> DockerCLI:
    engine = DockerCLI()
    if engine.image_id(IMAGE) is None:
        pytest.skip(f"{IMAGE} is not built here (harness base-images 3.11)")
    return engine


def _run(engine: DockerCLI, tmp_path: Path, mounts: tuple[Mount, ...], *paths: str,
         masks: tuple[str, ...] = ()) -> str:
    spec = RunSpec(image=IMAGE, command=("python3", "-c", READ, *paths), name=f"harness-args-test-{tmp_path.name}",
                   mounts=mounts, masks=masks, network="none", user="65534:65534", timeout=120,
                   labels={"org.harness.run": "args-test"})
    result = engine.run(spec, tmp_path / "container.log")
    assert result.exit_code == 0, (tmp_path / "container.log").read_text()
    return (tmp_path / "container.log").read_text()


@pytest.mark.parametrize("name", ["inj,source=", 'q"uote,source=', 'x",source="', "a=b,target=", " lead,ro=false"])
def test_a_crafted_folder_name_is_mounted_by_its_whole_name(engine: DockerCLI, tmp_path: Path, name: str) -> None:
    meant = tmp_path / name / "etc"
    meant.mkdir(parents=True)
    (meant / "marker").write_text("the user's folder")
    output = _run(engine, tmp_path, (Mount(meant, "/harness/user/m"),), "/harness/user/m/marker", "/harness/user/m")
    print(output)
    assert "/harness/user/m/marker => the user's folder" in output
    assert "/harness/user/m => ['marker']" in output  # not the host's /etc


def test_a_mount_is_read_only_whatever_its_name_says(engine: DockerCLI, tmp_path: Path) -> None:
    meant = tmp_path / "ro=false,readonly=false"
    meant.mkdir()
    spec = RunSpec(image=IMAGE, command=("sh", "-c", "touch /harness/in/x && echo WROTE || echo REFUSED"),
                   name=f"harness-args-test-ro-{tmp_path.name}", mounts=(Mount(meant, "/harness/in"),),
                   network="none", user="65534:65534", timeout=120, labels={"org.harness.run": "args-test"})
    engine.run(spec, tmp_path / "ro.log")
    assert "REFUSED" in (tmp_path / "ro.log").read_text() and not (meant / "x").exists()


def test_a_checkouts_git_folder_is_hidden_from_the_containers(engine: DockerCLI, tmp_path: Path) -> None:
    code = tmp_path / "checkout"
    (code / ".git").mkdir(parents=True)
    (code / ".git" / "config").write_text("[http]\n\textraheader = AUTHORIZATION: basic c2VjcmV0\n")
    (code / "model.py").write_text("def build(): pass\n")
    output = _run(engine, tmp_path, (Mount(code, "/harness/user/m"),), "/harness/user/m", "/harness/user/m/.git",
                  masks=("/harness/user/m/.git",))
    print(output)
    assert "/harness/user/m => ['.git', 'model.py']" in output
    assert "/harness/user/m/.git => []" in output and "c2VjcmV0" not in output
