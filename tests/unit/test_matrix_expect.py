"""The matrix's `expect:` list: parsing, every problem with its key path, and the run.json round trip."""

from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path

import pytest

from harness.cli import main
from harness.matrix import Expectation, MatrixError, load_matrix, matrix_from_dict, matrix_to_dict

HEAD = """\
environments:
  - {python: "3.9", tensorflow: "2.12.1"}
  - {python: "3.11", tensorflow: "2.16.2", keras: "3.3.3"}
"""
OLD, NEW = "py3.9-tf2.12.1", "py3.11-tf2.16.2-keras3.3.3"


def _write(tmp_path: Path, expect: str) -> Path:
    path = tmp_path / "m.yaml"
    path.write_text(HEAD + "expect:\n" + textwrap.indent(textwrap.dedent(expect), "  "), encoding="utf-8")
    return path


def _problems(tmp_path: Path, expect: str) -> list[str]:
    with pytest.raises(MatrixError) as info:
        load_matrix(_write(tmp_path, expect))
    return info.value.problems


def test_every_selector_form(tmp_path: Path) -> None:
    matrix = load_matrix(_write(tmp_path, f"""\
        - source: {OLD}
          target: {{keras_major: 3}}
          format: keras
          status: error
          reason: a Keras 2 .keras file does not load in Keras 3
        - source: "py3.9-*"
          target: {{python: "3.11", keras: "3.*"}}
          model: "d*"
          loader: load_model
          status: [drift, crash]
          reason: float noise
        - reason: everything may fail
        """))
    first, second, third = matrix.expect
    assert first == Expectation(reason="a Keras 2 .keras file does not load in Keras 3", source=(("id", OLD),),
                                target=(("keras_major", "3"),), format="keras", status=("error",))
    assert second.source == (("id", "py3.9-*"),)
    assert second.target == (("python", "3.11"), ("keras", "3.*"))
    assert (second.model, second.format, second.loader, second.status) == ("d*", "*", "load_model", ("drift", "crash"))
    assert third == Expectation(reason="everything may fail")
    assert third.status == ()  # any failing status


def test_no_expect_is_an_empty_tuple(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(HEAD)
    assert load_matrix(path).expect == ()


def test_expectations_round_trip_through_run_json(tmp_path: Path) -> None:
    matrix = load_matrix(_write(tmp_path, f"""\
        - {{source: {OLD}, target: {{keras_major: 3, python: "3.11"}}, status: [error, skipped], reason: r1}}
        - {{model: dense, reason: r2}}
        """))
    stored = json.loads(json.dumps(matrix_to_dict(matrix)))
    assert matrix_from_dict(stored) == matrix
    del stored["expect"]  # run.json written before expectations existed
    assert matrix_from_dict(stored).expect == ()


@pytest.mark.parametrize(
    ("expect", "fragments"),
    [
        ("- {stauts: error, reason: r}", ["expect[0].stauts: unknown key; did you mean 'status'?"]),
        ("- {status: erorr, reason: r}", ["expect[0].status: unknown status 'erorr'; did you mean 'error'?"]),
        ("- {status: [drift, pass], reason: r}",
         ["expect[0].status[1]: 'pass' is not a failure; expected one of: drift, error, timeout, crash, skipped"]),
        ("- {status: [], reason: r}", ["expect[0].status: expected a status or a list of statuses"]),
        ("- {status: [3], reason: r}", ["expect[0].status[0]: expected a status name, found the number 3"]),
        ("- {status: error}", ["expect[0].reason: required key missing"]),
        ("- {reason: '  '}", ["expect[0].reason: expected a non-empty string"]),
        ("- {source: py3.9-tf2.12, reason: r}",
         ["expect[0].source: no environment 'py3.9-tf2.12' in this matrix; did you mean 'py3.9-tf2.12.1'?"]),
        ("- {target: {keras_majr: 3}, reason: r}", ["expect[0].target.keras_majr: unknown key; did you mean"]),
        ("- {target: {keras_major: 4}, reason: r}",
         ["expect[0].target.keras_major: expected 2 or 3, found the number 4"]),
        ("- {target: {python: 3.10}, reason: r}", ["expect[0].target.python: found the number 3.1; quote versions"]),
        ("- {target: {}, reason: r}", ["expect[0].target: expected an environment id, a glob"]),
        ("- {target: [a], reason: r}", ["expect[0].target: expected an environment id", "found a list"]),
        ("- {format: kears, reason: r}", ["expect[0].format: unknown format 'kears'; did you mean 'keras'?"]),
        ("- {loader: load, reason: r}", ["expect[0].loader: unknown loader 'load'"]),
        ("- {model: 7, reason: r}", ["expect[0].model: expected a non-empty string, found the number 7"]),
        ("- error", ["expect[0]: expected a non-empty mapping, found the string 'error'"]),
    ],
)
def test_bad_entries_name_their_key_path(tmp_path: Path, expect: str, fragments: list[str]) -> None:
    message = "\n".join(_problems(tmp_path, expect))
    for fragment in fragments:
        assert fragment in message


def test_globs_are_not_checked_against_ids(tmp_path: Path) -> None:
    matrix = load_matrix(_write(tmp_path, "- {source: 'py4.*', format: 'h*', reason: r}"))
    assert matrix.expect[0].source == (("id", "py4.*"),)


def test_expect_not_a_list(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(HEAD + "expect: {status: error}\n")
    with pytest.raises(MatrixError) as info:
        load_matrix(path)
    assert info.value.problems == ["expect: expected a list of mappings, found a mapping"]


def test_every_problem_is_reported_together(tmp_path: Path) -> None:
    problems = _problems(tmp_path, """\
        - {status: erorr, reason: r}
        - {format: kears}
        """)
    assert [p.split(":")[0] for p in problems] == ["expect[0].status", "expect[1].reason", "expect[1].format"]


def test_validate_with_a_bad_expectation_is_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(tmp_path, "- {status: erorr, reason: r}")
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0
    assert err.startswith(f"harness: error: {path}: expect[0].status: unknown status")


def test_the_readme_example_is_valid(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parents[2]
    match = re.search(r"```yaml\n(expect:.*?)```", (root / "docs" / "matrix.md").read_text(encoding="utf-8"), re.S)
    assert match is not None
    path = tmp_path / "m.yaml"
    default = (root / "matrices" / "default.yaml").read_text(encoding="utf-8").split("\nexpect:")[0]  # its own aside
    path.write_text(default + "\n" + match.group(1))
    first, second = load_matrix(path).expect
    assert first.target == (("keras_major", "3"),) and first.status == ("error",)
    assert second.status == ("crash", "timeout")


def test_the_default_matrix_ships_one_expectation_per_known_cause() -> None:
    matrix = load_matrix(Path(__file__).resolve().parents[2] / "matrices" / "default.yaml")
    causes = [e.cause for e in matrix.expect]
    assert causes and "*" not in causes and len(set(causes)) == len(causes)
    assert all(e.reason and e.model == e.format == e.loader == "*" for e in matrix.expect)
