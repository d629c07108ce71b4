"""The command line: exit codes, one-line errors, and nothing written on bad input. No Docker is reached."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from fake_engine import FakeEngine
from harness import __version__
from harness.cli import main, options
from harness.matrix import load_matrix

REPO_ROOT = Path(__file__).resolve().parents[2]
SMOKE = REPO_ROOT / "matrices" / "smoke.yaml"


@pytest.fixture(autouse=True)
def _hermetic_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HARNESS_BASE_IMAGE", "HARNESS_DOCKERFILES", "PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL",
                 "PIP_TRUSTED_HOST", "PIP_CERT", "REQUESTS_CA_BUNDLE", "SSL_CERT_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_COLOR", "1")


@pytest.fixture
def bad_matrix(tmp_path: Path) -> Path:
    path = tmp_path / "bad.yaml"
    path.write_text(textwrap.dedent("""\
        name: bad
        environments:
          - python: 3.10
            tensorflow: "2.16.2"
        """))
    return path


def _one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("harness: error: ")
    return lines[0]


@pytest.mark.parametrize("command", ["validate", "run"])
def test_bad_matrix_is_exit_2_with_one_line_and_nothing_written(
    command: str, bad_matrix: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)  # the default --out would be runs/ here
    out = tmp_path / "out"
    argv = [command, str(bad_matrix)] + (["--out", str(out)] if command == "run" else [])
    assert main(argv) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert str(bad_matrix) in line
    assert "python" in line and "3.1" in line and "quote" in line
    assert not out.exists()
    assert not (tmp_path / "runs").exists()


def test_validate_smoke_prints_every_environment(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(SMOKE)]) == 0
    captured = capsys.readouterr()
    ids = [env.id for env in load_matrix(SMOKE).environments]
    assert len(ids) == 2
    for env_id in ids:
        assert env_id in captured.out
    assert f"{len(ids)} environment(s)" in captured.out
    assert "harness-env:" in captured.out
    assert "error" not in captured.err


def test_validate_base_image_override(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(SMOKE), "--base-image", "harness-base:{python}"]) == 0
    assert "harness-base:3.11" in capsys.readouterr().out


def test_validate_missing_file_is_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(tmp_path / "nope.yaml")]) == 2
    assert "nope.yaml" in _one_error_line(capsys.readouterr().err)


def test_resume_without_out_is_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["run", str(SMOKE), "--resume"]) == 2
    assert "--resume" in _one_error_line(capsys.readouterr().err)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("value", ["0", "-1", "two"])
def test_jobs_must_be_a_positive_whole_number(value: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["run", str(SMOKE), "--jobs", value])
    assert info.value.code == 2
    assert "--jobs" in capsys.readouterr().err


def test_cell_timeout_must_be_positive(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["run", str(SMOKE), "--cell-timeout", "0"])
    assert info.value.code == 2
    assert "--cell-timeout" in capsys.readouterr().err


def test_no_command_is_argparse_exit_2() -> None:
    with pytest.raises(SystemExit) as info:
        main([])
    assert info.value.code == 2


def test_report_on_a_directory_without_run_json_is_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["report", str(tmp_path)]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert "run.json" in line and str(tmp_path) in line
    assert list(tmp_path.iterdir()) == []  # no report written


def test_missing_docker_command_is_exit_3_and_nothing_created(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    empty_bin = tmp_path / "bin"
    empty_bin.mkdir()
    monkeypatch.setenv("PATH", str(empty_bin))
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "out"
    assert main(["run", str(SMOKE), "--out", str(out)]) == 3
    line = _one_error_line(capsys.readouterr().err)
    assert "docker" in line
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bin"]  # no default runs/ either


def test_only_unknown_environment_is_exit_2_naming_the_known_ids(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    assert main(["run", str(SMOKE), "--only", "nosuchenv", "--out", str(out)]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert "nosuchenv" in line
    for env in load_matrix(SMOKE).environments:
        assert env.id in line
    assert not out.exists()


def test_python_m_harness_version() -> None:
    proc = subprocess.run([sys.executable, "-m", "harness", "--version"], capture_output=True, text=True,
                          timeout=60, check=False, cwd=REPO_ROOT, env={**os.environ, "NO_COLOR": "1"})
    assert proc.returncode == 0
    assert proc.stdout.strip() == f"harness {__version__}"
    assert __version__.count(".") >= 1


def test_a_full_disk_is_one_line_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    import errno

    from harness import cli

    def full(args: object, engine: object) -> int:
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "run" / "report.json"))

    monkeypatch.setattr(cli.report, "main", full)
    assert main(["report", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0
    assert "No space left on device" in err and "report.json" in err


def test_an_output_path_below_a_file_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "file"  # the engine answers: the path is the only error
    blocker.write_text("x")
    assert main(["run", "matrices/smoke.yaml", "--out", str(blocker / "run")], engine=FakeEngine) == 2
    assert "harness: error:" in capsys.readouterr().err


def test_validate_fits_the_terminal(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    for columns in (80, 132):
        monkeypatch.setenv("COLUMNS", str(columns))
        assert main(["validate", "matrices/default.yaml"]) == 0
        lines = capsys.readouterr().out.splitlines()
        assert lines and max(len(line) for line in lines) <= columns


def test_a_reader_that_goes_away_ends_the_command_quietly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    from fake_run import FakeRun

    run = FakeRun(tmp_path / "run")
    read, write = os.pipe()
    os.close(read)  # the reader is gone (`... | head` that has read enough): every write meets a closed pipe
    saved = os.dup(1)
    try:
        with capsys.disabled(), open(write, "w", encoding="utf-8") as closed:
            monkeypatch.setattr(sys, "stdout", closed)
            assert main(["report", str(run.root), "--format", "json"]) == 0
    finally:
        os.dup2(saved, 1)  # the handler pointed fd 1 at /dev/null
        os.close(saved)


def test_default_jobs_count_the_memory_the_page_cache_would_give_back(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:       24683724 kB\nMemFree:         3332228 kB\nMemAvailable:   22736036 kB\n")
    assert options.default_jobs(meminfo) == 2  # 3 GiB free, 21 GiB available once the cache is dropped
    meminfo.write_text("MemTotal:       8000000 kB\nMemFree:         1000000 kB\nMemAvailable:    7000000 kB\n")
    assert options.default_jobs(meminfo) == 1
