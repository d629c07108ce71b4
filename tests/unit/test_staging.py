"""Staging what users point at: an existing artifact is copied into the run directory without following a link
or opening a special file, a .keras zip bomb is never inflated on the host, and a failed stage leaves nothing."""

from __future__ import annotations

import os
import tracemalloc
import zipfile
from pathlib import Path

import numpy as np
import pytest

from harness import models
from harness.matrix import Matrix, parse_matrix
from harness.models import sniff_versions
from harness.rundir import RunDir
from harness.untrusted import UnsafeFile, copy_artifact, copy_user_file


@pytest.fixture
def saved_model(tmp_path: Path) -> Path:
    root = tmp_path / "user" / "sm"
    (root / "variables").mkdir(parents=True)
    (root / "saved_model.pb").write_bytes(b"graph")
    (root / "variables" / "variables.index").write_bytes(b"index")
    np.save(tmp_path / "user" / "x.npy", np.zeros((2, 3), dtype="float32"))
    return root


def _matrix(saved_model: Path) -> Matrix:
    return parse_matrix({"environments": [{"python": "3.11", "tensorflow": "2.15.1"}],
                         "models": [{"name": "m", "artifact": "sm", "inputs": "x.npy"}]},
                        path=str(saved_model.parent / "m.yaml"), sha256="0" * 64)


def test_a_savedmodel_directory_is_copied_file_by_file(tmp_path: Path, saved_model: Path) -> None:
    copy_artifact(saved_model, tmp_path / "copy")
    assert sorted(str(p.relative_to(tmp_path / "copy")) for p in (tmp_path / "copy").rglob("*")) == [
        "saved_model.pb", "variables", "variables/variables.index"]
    assert (tmp_path / "copy" / "variables" / "variables.index").read_bytes() == b"index"


def test_a_link_that_appears_after_validation_stops_staging_and_leaves_nothing(tmp_path: Path,
                                                                               saved_model: Path) -> None:
    matrix = _matrix(saved_model)
    secret = tmp_path / "secret"
    secret.write_text("host secret")
    (saved_model / "variables" / "variables.data-00000-of-00001").symlink_to(secret)
    run_dir = RunDir.prepare(tmp_path / "run", resume=False)
    with pytest.raises(UnsafeFile, match=r"variables\.data-00000-of-00001, a symbolic link"):
        models.stage_models(matrix.models, run_dir)
    assert list(run_dir.artifacts_root.iterdir()) == []


@pytest.mark.parametrize("kind", ["link", "fifo"])
def test_a_user_file_swapped_for_a_link_or_a_fifo_is_not_copied(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "labels.npy"
    if kind == "link":
        (tmp_path / "elsewhere").write_text("secret")
        path.symlink_to(tmp_path / "elsewhere")
    else:
        os.mkfifo(path)
    with pytest.raises(UnsafeFile, match="a symbolic link" if kind == "link" else "a FIFO"):
        copy_user_file(path, tmp_path / "copy.npy")
    assert not (tmp_path / "copy.npy").exists()


def test_a_keras_zip_bomb_is_not_inflated_on_the_host(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.keras"
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as archive, \
            archive.open("metadata.json", "w", force_zip64=True) as member:
        for _ in range(256):  # 256 MiB of spaces: a few hundred KiB on disk
            member.write(b" " * (1 << 20))
    assert bomb.stat().st_size < 2 << 20
    tracemalloc.start()
    try:
        versions = sniff_versions(bomb, "keras")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert versions["keras"] is None
    assert peak < 32 << 20, f"{peak} bytes allocated reading the archive"


def test_a_keras_files_metadata_still_names_its_version(tmp_path: Path) -> None:
    path = tmp_path / "model.keras"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("metadata.json", '{"keras_version": "3.3.3"}')
    assert sniff_versions(path, "keras")["keras"] == "3.3.3"
