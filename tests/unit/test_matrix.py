"""Unit tests for harness.matrix: expansion, normalization, ids and problem messages."""

from __future__ import annotations

import hashlib
import textwrap
from pathlib import Path

import pytest

from harness.agent.catalog import FORMATS, LOADERS, OPT_IN_LOADERS
from harness.matrix import (
    Environment,
    Expectation,
    Matrix,
    MatrixError,
    PipSettings,
    Tolerance,
    load_matrix,
    parse_matrix,
)


def _write(tmp_path: Path, text: str, name: str = "m.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def _load(tmp_path: Path, text: str) -> Matrix:
    return load_matrix(_write(tmp_path, text))


def _ids(matrix: Matrix) -> list[str]:
    return [env.id for env in matrix.environments]


def _problems(tmp_path: Path, text: str) -> MatrixError:
    with pytest.raises(MatrixError) as info:
        _load(tmp_path, text)
    return info.value


# ---------------------------------------------------------------------------- good inputs


def test_cartesian_product_in_written_axis_order(tmp_path: Path) -> None:
    matrix = _load(
        tmp_path,
        """
        matrix:
          tensorflow: ["2.16.2", "2.17.0"]
          python: ["3.10", "3.11", "3.12"]
        """,
    )
    assert _ids(matrix) == [
        "py3.10-tf2.16.2",
        "py3.11-tf2.16.2",
        "py3.12-tf2.16.2",
        "py3.10-tf2.17.0",
        "py3.11-tf2.17.0",
        "py3.12-tf2.17.0",
    ]
    assert matrix.environments[0] == Environment(
        id="py3.10-tf2.16.2",
        python="3.10",
        tensorflow="==2.16.2",
        base_image="python:3.10-slim",
    )


def test_include_follows_github_actions_semantics(tmp_path: Path) -> None:
    matrix = _load(
        tmp_path,
        """
        matrix:
          python: ["3.10", "3.11"]
          tensorflow: ["2.16.2", "2.17.0"]
          include:
            - packages: ["numpy<2"]          # no axis key: merges into every combination
            - tensorflow: "2.17.0"           # added values may be overwritten later
              packages: ["numpy>=2"]
            - python: "3.10"                 # merges into the python 3.10 combinations
              keras: "3.3.3"
            - python: "3.12"                 # conflicts with every original python: appended
              tensorflow: "2.17.0"
            - python: "3.12"                 # appended too, not merged into the entry above
              tensorflow: "2.16.2"
              keras: "3.3.3"
        """,
    )
    assert _ids(matrix) == [
        "py3.10-tf2.16.2-keras3.3.3",
        "py3.10-tf2.17.0-keras3.3.3",
        "py3.11-tf2.16.2",
        "py3.11-tf2.17.0",
        "py3.12-tf2.17.0",
        "py3.12-tf2.16.2-keras3.3.3",
    ]
    packages = [env.packages for env in matrix.environments]
    assert packages == [("numpy<2",), ("numpy>=2",), ("numpy<2",), ("numpy>=2",), (), ()]
    assert matrix.environments[0].keras == "==3.3.3"


def test_include_with_name_only_for_matching_combination(tmp_path: Path) -> None:
    matrix = _load(
        tmp_path,
        """
        matrix:
          python: ["3.11"]
          tensorflow: ["2.16.2", "2.17.0"]
          include:
            - tensorflow: "2.17.0"
              name: newest
        """,
    )
    assert _ids(matrix) == ["py3.11-tf2.16.2", "newest"]


def test_exclude_with_partial_keys(tmp_path: Path) -> None:
    matrix = _load(
        tmp_path,
        """
        matrix:
          python: ["3.10", "3.11"]
          tensorflow: ["2.16.2", "2.17.0"]
          keras: ["3.3.3", "3.5.0"]
          exclude:
            - python: "3.10"
            - tensorflow: "2.17.0"
              keras: "3.3.3"
        """,
    )
    assert _ids(matrix) == [
        "py3.11-tf2.16.2-keras3.3.3",
        "py3.11-tf2.16.2-keras3.5.0",
        "py3.11-tf2.17.0-keras3.5.0",
    ]


def test_explicit_environments_only(tmp_path: Path) -> None:
    matrix = _load(
        tmp_path,
        """
        environments:
          - python: "3.9"
            tensorflow: "2.12.1"
            packages: ["h5py==3.8.0", "numpy<2"]
          - name: custom-1
            python: "3.13"
            tensorflow: "2.20.*"
            tensorflow_package: tensorflow
        """,
    )
    first, second = matrix.environments
    assert first.id == "py3.9-tf2.12.1"
    assert first.packages == ("h5py==3.8.0", "numpy<2")
    assert first.requirements() == ["tensorflow-cpu==2.12.1", "h5py==3.8.0", "numpy<2"]
    assert second.id == "custom-1"
    assert second.tensorflow == "==2.20.*"
    assert second.tensorflow_package == "tensorflow"


def test_matrix_then_include_then_environments(tmp_path: Path) -> None:
    matrix = _load(
        tmp_path,
        """
        environments:
          - {python: "3.9", tensorflow: "2.15.1"}
        matrix:
          python: ["3.11"]
          tensorflow: ["2.16.2"]
          include:
            - {python: "3.12", tensorflow: "2.18.0"}
        """,
    )
    assert _ids(matrix) == ["py3.11-tf2.16.2", "py3.12-tf2.18.0", "py3.9-tf2.15.1"]


def test_include_only_matrix_appends_each_entry(tmp_path: Path) -> None:
    matrix = _load(
        tmp_path,
        """
        matrix:
          include:
            - {python: "3.11", tensorflow: "2.16.2"}
            - {python: "3.12", tensorflow: "2.17.0"}
        """,
    )
    assert _ids(matrix) == ["py3.11-tf2.16.2", "py3.12-tf2.17.0"]


@pytest.mark.parametrize(
    ("tensorflow", "keras", "package", "expected"),
    [
        ("2.16.2", "3.3.3", None, "py3.11-tf2.16.2-keras3.3.3"),
        ("2.16.2", "tf-keras", None, "py3.11-tf2.16.2-tfkeras"),
        ("2.16.*", None, None, "py3.11-tf2.16.x"),
        (">=2.16,<2.17", None, None, "py3.11-tfge2.16-lt2.17"),
        ("<2.17, >=2.16", None, None, "py3.11-tflt2.17-ge2.16"),
        ("~=2.16.0", None, None, "py3.11-tfcompat2.16.0"),
        ("==2.16.*,!=2.16.1", None, None, "py3.11-tf2.16.x-ne2.16.1"),
        ("2.16.2", "tf-keras==2.16.0", None, "py3.11-tf2.16.2-tfkeras2.16.0"),
        ("2.16.2", ">3.0,<=3.5", "tensorflow", "py3.11-tf2.16.2-kerasgt3.0-le3.5-full"),
    ],
)
def test_environment_ids(tensorflow: str, keras: str | None, package: str | None, expected: str) -> None:
    env: dict[str, object] = {"python": "3.11", "tensorflow": tensorflow, "packages": ["numpy<2"]}
    if keras is not None:
        env["keras"] = keras
    if package is not None:
        env["tensorflow_package"] = package
    matrix = parse_matrix({"environments": [env]}, path="m.yaml", sha256="x")
    assert _ids(matrix) == [expected]


@pytest.mark.parametrize(
    ("tensorflow", "keras", "expected_tf", "expected_tf_keras"),
    [
        ("2.16.2", "tf-keras", "==2.16.2", "==2.16.*"),
        ("2.17.*", "tf-keras", "==2.17.*", "==2.17.*"),
        (">=2.16,<2.17", "tf-keras", ">=2.16,<2.17", None),
        ("2.16.2", "tf-keras==2.16.0", "==2.16.2", "==2.16.0"),
        ("2.16.2", "tf-keras 2.16.0", "==2.16.2", "==2.16.0"),
        ("2.16.2", "tf-keras>=2.16", "==2.16.2", ">=2.16"),
        ("2.16.2", "tf_keras", "==2.16.2", "==2.16.*"),
    ],
)
def test_tf_keras_forms(tensorflow: str, keras: str, expected_tf: str, expected_tf_keras: str | None) -> None:
    data = {"environments": [{"python": "3.11", "tensorflow": tensorflow, "keras": keras}]}
    (env,) = parse_matrix(data, path="m.yaml", sha256="x").environments
    assert env.tensorflow == expected_tf
    assert env.legacy_keras is True
    assert env.keras is None
    assert env.tf_keras == expected_tf_keras


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ("2.16.2", "==2.16.2"),
        ("2.16.*", "==2.16.*"),
        ("==2.16.2", "==2.16.2"),
        (">=2.16, <2.17", ">=2.16,<2.17"),
        ("  2.16.2 ", "==2.16.2"),
        ("~=2.16.0", "~=2.16.0"),
    ],
)
def test_specifier_normalization(written: str, expected: str) -> None:
    data = {"environments": [{"python": "3.11", "tensorflow": written, "keras": written.replace("2.", "3.", 1)}]}
    (env,) = parse_matrix(data, path="m.yaml", sha256="x").environments
    assert env.tensorflow == expected
    assert env.keras == expected.replace("2.", "3.", 1)
    assert env.legacy_keras is False


def test_defaults(tmp_path: Path) -> None:
    path = _write(tmp_path, 'environments: [{python: "3.11", tensorflow: "2.16.2"}]\n', "nightly.yaml")
    matrix = load_matrix(path)
    assert matrix.name == "nightly"
    assert matrix.path == str(path)
    assert matrix.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    # Every built-in probe but the fault self-tests; every format; every loader but the opt-in one.
    names = [m.name for m in matrix.models]
    assert "dense" in names and "lambda" in names
    assert not any("hostile-artifact" in m.hazards for m in matrix.models)  # the fault self-tests are opt-in
    assert matrix.formats == tuple(FORMATS)
    assert matrix.loaders == tuple(name for name in LOADERS if name not in OPT_IN_LOADERS)
    assert matrix.tolerance == Tolerance()
    assert matrix.pip == PipSettings()
    env = matrix.environments[0]
    assert env.tensorflow_package == "tensorflow-cpu"
    assert env.base_image == "python:3.11-slim"
    assert (env.keras, env.legacy_keras, env.tf_keras) == (None, False, None)


def test_top_level_settings(tmp_path: Path) -> None:
    matrix = _load(
        tmp_path,
        """
        name: weekly
        models: [dense]
        formats: [keras]
        loaders: [load_model]
        tolerance: {rtol: 0, atol: 1.0e-4}
        tensorflow_package: tensorflow
        base_image: "registry.local/python:{python}-bookworm"
        expect:
          - {target: py3.11-tf2.16.2-full, status: error, reason: no such loader there}
        environments:
          - {python: "3.11", tensorflow: "2.16.2"}
          - python: "3.12"
            tensorflow: "2.17.0"
            base_image: "my/python-{python}"
            tensorflow_package: tensorflow-cpu
        """,
    )
    assert matrix.name == "weekly"
    assert (tuple(m.name for m in matrix.models), matrix.formats, matrix.loaders) == (
        ("dense",),
        ("keras",),
        ("load_model",),
    )
    assert (matrix.models[0].formats, matrix.models[0].loaders) == (("keras",), ("load_model",))
    assert matrix.tolerance == Tolerance(rtol=0.0, atol=1e-4)
    first, second = matrix.environments
    assert (first.id, first.tensorflow_package) == ("py3.11-tf2.16.2-full", "tensorflow")
    assert first.base_image == "registry.local/python:3.11-bookworm"
    assert (second.id, second.base_image) == ("py3.12-tf2.17.0", "my/python-3.12")
    assert matrix.expect == (Expectation(reason="no such loader there", target=(("id", first.id),),
                                         status=("error",)),)


def test_base_image_override_applies_everywhere(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        """
        base_image: "python:{python}-bookworm"
        environments:
          - {python: "3.11", tensorflow: "2.16.2"}
          - {python: "3.12", tensorflow: "2.17.0", base_image: "literal:image"}
        """,
    )
    matrix = load_matrix(path, base_image="mirror.local/python:{python}")
    assert [env.base_image for env in matrix.environments] == [
        "mirror.local/python:3.11",
        "mirror.local/python:3.12",
    ]
    assert load_matrix(path).environments[1].base_image == "literal:image"


def test_pip_settings_with_relative_ca_bundle(tmp_path: Path) -> None:
    (tmp_path / "certs").mkdir()
    bundle = tmp_path / "certs" / "corp.pem"
    bundle.write_text("-----BEGIN CERTIFICATE-----\n", encoding="utf-8")
    matrix = _load(
        tmp_path,
        """
        pip:
          index_url: https://pypi.corp/simple
          extra_index_urls: [https://extra.corp/simple]
          trusted_hosts: [pypi.corp, extra.corp]
          ca_bundle: certs/corp.pem
        environments: [{python: "3.11", tensorflow: "2.16.2"}]
        """,
    )
    assert matrix.pip == PipSettings(
        index_url="https://pypi.corp/simple",
        extra_index_urls=("https://extra.corp/simple",),
        trusted_hosts=("pypi.corp", "extra.corp"),
        ca_bundle=str(bundle.resolve()),
    )


def test_parse_matrix_resolves_ca_bundle_against_given_path(tmp_path: Path) -> None:
    (tmp_path / "ca.pem").write_text("x", encoding="utf-8")
    data = {
        "pip": {"ca_bundle": "ca.pem"},
        "environments": [{"python": "3.11", "tensorflow": "2.16.2"}],
    }
    matrix = parse_matrix(data, path=str(tmp_path / "m.yaml"), sha256="abc")
    assert matrix.pip.ca_bundle == str((tmp_path / "ca.pem").resolve())
    assert matrix.sha256 == "abc"


def test_result_is_frozen(tmp_path: Path) -> None:
    matrix = _load(tmp_path, 'environments: [{python: "3.11", tensorflow: "2.16.2"}]\n')
    with pytest.raises(AttributeError):
        matrix.name = "other"  # type: ignore[misc]
    assert isinstance(matrix.environments, tuple)


# ---------------------------------------------------------------------------- bad inputs

_ENV = 'environments: [{python: "3.11", tensorflow: "2.16.2"}]\n'

BAD_INPUTS: list[tuple[str, str, list[str]]] = [
    (
        "unquoted float python",
        'matrix: {python: ["3.9", 3.10], tensorflow: ["2.16.2"]}',
        [
            "matrix.python[1]: found the number 3.1",
            'quote versions ("3.10")',
            "YAML reads 3.10 as 3.1",
        ],
    ),
    (
        "unquoted float tensorflow",
        'environments: [{python: "3.11", tensorflow: 2.16}]',
        ["environments[0].tensorflow: found the number 2.16", "quote versions"],
    ),
    (
        "int version",
        'environments: [{python: 3, tensorflow: "2.16.2"}]',
        ["environments[0].python: found the number 3", "quote versions"],
    ),
    (
        "boolean version",
        'environments: [{python: "3.11", tensorflow: "2.16.2", keras: true}]',
        ["environments[0].keras: expected a string, found the boolean true"],
    ),
    (
        "list where a version is expected",
        'environments: [{python: ["3.11"], tensorflow: "2.16.2"}]',
        ["environments[0].python: expected a string, found a list"],
    ),
    (
        "missing python",
        'environments: [{tensorflow: "2.16.2"}]',
        ["environments[0].python: required key missing"],
    ),
    (
        "missing tensorflow in matrix",
        'matrix: {python: ["3.10", "3.11"]}',
        ["matrix.tensorflow: required key missing", "add a 'tensorflow' axis"],
    ),
    (
        "missing tensorflow in appended include",
        'matrix: {python: ["3.11"], tensorflow: ["2.16.2"], include: [{python: "3.12"}]}',
        ["matrix.include[0].tensorflow: required key missing", "matched no combination"],
    ),
    (
        "unknown top-level key with typo",
        'enviroments: [{python: "3.11", tensorflow: "2.16.2"}]',
        ["enviroments: unknown key; did you mean 'environments'?"],
    ),
    (
        "unknown environment key with typo",
        'environments: [{python: "3.11", tensorfow: "2.16.2"}]',
        ["environments[0].tensorfow: unknown key; did you mean 'tensorflow'?"],
    ),
    (
        "unknown probe",
        _ENV + "models: [dens]",
        ["models[0]: unknown probe 'dens'; did you mean 'dense'?"],
    ),
    (
        "unknown probe without close match",
        _ENV + "models: [dense, resnet_giant]",
        ["models[1]: unknown probe 'resnet_giant'", "expected one of: dense"],
    ),
    (
        "unknown format",
        _ENV + "formats: [keras, kerass]",
        ["formats[1]: unknown format 'kerass'; did you mean 'keras'?"],
    ),
    (
        "unknown loader",
        _ENV + "loaders: [load_modle]",
        ["loaders[0]: unknown loader 'load_modle'; did you mean 'load_model'?"],
    ),
    (
        "empty models list",
        _ENV + "models: []",
        ["models: expected a non-empty list of probe names or model mappings, found an empty list"],
    ),
    (
        "probe listed twice",
        _ENV + "models: [dense, dense]",
        ["models[1]: model 'dense' is listed twice"],
    ),
    (
        "bad specifier",
        'environments: [{python: "3.11", tensorflow: "2.16.x"}]',
        ["environments[0].tensorflow: expected a version", "pip specifier", "'2.16.x'"],
    ),
    (
        "bad tf-keras specifier",
        'environments: [{python: "3.11", tensorflow: "2.16.2", keras: "tf-keras==abc!"}]',
        ["environments[0].keras: expected a version", "'==abc!'"],
    ),
    (
        "bad python format",
        'environments: [{python: "3", tensorflow: "2.16.2"}]',
        ['environments[0].python: expected a Python version "3.X"', "found '3'"],
    ),
    (
        "bad package requirement",
        'environments: [{python: "3.11", tensorflow: "2.16.2", packages: ["h5py", "numpy<<2"]}]',
        ["environments[0].packages[1]: invalid requirement 'numpy<<2'"],
    ),
    (
        "packages not a list",
        'environments: [{python: "3.11", tensorflow: "2.16.2", packages: "numpy<2"}]',
        [
            "environments[0].packages: expected a list of requirement strings",
            "found the string 'numpy<2'",
        ],
    ),
    (
        "keras 3 with tf 2.15",
        'environments: [{python: "3.11", tensorflow: "2.15.1", keras: "3.3.3"}]',
        ["environments[0].keras: keras 3 needs tensorflow >= 2.16", "use tf-keras"],
    ),
    (
        "keras 3 with tf 2.15 in a matrix combination",
        'matrix: {python: ["3.11"], tensorflow: ["2.15.1", "2.16.2"], keras: ["3.3.3"]}',
        ["matrix[py3.11-tf2.15.1-keras3.3.3].keras: keras 3 needs tensorflow >= 2.16"],
    ),
    (
        "tf-keras with tf 2.12",
        'environments: [{python: "3.10", tensorflow: "2.12.*", keras: "tf-keras"}]',
        ["environments[0].keras: tf-keras exists only for tensorflow >= 2.14", "==2.12.*"],
    ),
    (
        "duplicate ids",
        """
        matrix: {python: ["3.11"], tensorflow: ["2.16.2"]}
        environments: [{python: "3.11", tensorflow: "==2.16.2", packages: ["numpy<2"]}]
        """,
        [
            "environments[0]: duplicate environment id 'py3.11-tf2.16.2'",
            "same as matrix[py3.11-tf2.16.2]",
            "set 'name:'",
        ],
    ),
    (
        "duplicate explicit names",
        """
        environments:
          - {name: a, python: "3.11", tensorflow: "2.16.2"}
          - {name: a, python: "3.12", tensorflow: "2.16.2"}
        """,
        ["environments[1]: duplicate environment id 'a' (same as environments[0])"],
    ),
    (
        "scalar axis",
        'matrix: {python: "3.11", tensorflow: ["2.16.2"]}',
        ["matrix.python: expected a list of values, found the string '3.11'"],
    ),
    (
        "empty axis",
        'matrix: {python: ["3.11"], tensorflow: []}',
        ["matrix.tensorflow: expected a non-empty list of values, found an empty list"],
    ),
    (
        "unknown axis",
        'matrix: {pyton: ["3.11"], tensorflow: ["2.16.2"]}',
        ["matrix.pyton: unknown key; did you mean 'python'?"],
    ),
    (
        "name as an axis",
        'matrix: {name: [a, b], python: ["3.11"], tensorflow: ["2.16.2"]}',
        ["matrix.name: 'name' cannot be an axis"],
    ),
    (
        "matrix not a mapping",
        'matrix: ["3.11"]',
        ["matrix: expected a mapping of axis -> list of values, found a list"],
    ),
    (
        "include not a list",
        'matrix: {python: ["3.11"], tensorflow: ["2.16.2"], include: {keras: "3.3.3"}}',
        ["matrix.include: expected a list of mappings, found a mapping"],
    ),
    (
        "include entry not a mapping",
        'matrix: {python: ["3.11"], tensorflow: ["2.16.2"], include: ["3.12"]}',
        ["matrix.include[0]: expected a non-empty mapping, found the string '3.12'"],
    ),
    (
        "include entry with typo",
        'matrix: {python: ["3.11"], tensorflow: ["2.16.2"], include: [{kears: "3.3.3"}]}',
        ["matrix.include[0].kears: unknown key; did you mean 'keras'?"],
    ),
    (
        "include entry with unquoted float",
        'matrix: {python: ["3.11"], tensorflow: ["2.16.2"], include: [{python: 3.10}]}',
        ["matrix.include[0].python: found the number 3.1"],
    ),
    (
        "exclude with a key that is not an axis",
        'matrix: {python: ["3.11"], tensorflow: ["2.16.2"], exclude: [{keras: "3.3.3"}]}',
        ["matrix.exclude[0].keras: not an axis of this matrix", "python, tensorflow"],
    ),
    (
        "exclude key typo",
        'matrix: {python: ["3.11", "3.12"], tensorflow: ["2.16.2"], exclude: [{pythn: "3.12"}]}',
        ["matrix.exclude[0].pythn: not an axis of this matrix; did you mean 'python'?"],
    ),
    (
        "tolerance negative",
        _ENV + "tolerance: {rtol: -0.1}",
        ["tolerance.rtol: expected a non-negative number, found the number -0.1"],
    ),
    (
        "tolerance string",
        _ENV + "tolerance: {atol: loose}",
        ["tolerance.atol: expected a non-negative number, found the string 'loose'"],
    ),
    (
        "tolerance exponent without a dot",
        _ENV + "tolerance: {atol: 1e-5}",
        ["tolerance.atol: found the string '1e-5'", "1.0e-5"],
    ),
    (
        "tolerance unknown key",
        _ENV + "tolerance: {rtoll: 0.1}",
        ["tolerance.rtoll: unknown key; did you mean 'rtol'?"],
    ),
    (
        "top-level list",
        '- {python: "3.11", tensorflow: "2.16.2"}',
        ["top level: expected a mapping with 'matrix' or 'environments', found a list"],
    ),
    (
        "empty file",
        "",
        ["the file is empty"],
    ),
    (
        "no environments at all",
        "name: nothing",
        ["no environments"],
    ),
    (
        "environments not a list",
        'environments: {python: "3.11", tensorflow: "2.16.2"}',
        ["environments: expected a list of mappings, found a mapping"],
    ),
    (
        "bad tensorflow_package",
        'environments: [{python: "3.11", tensorflow: "2.16", tensorflow_package: tensorflow_cpu}]',
        [
            "environments[0].tensorflow_package: unknown TensorFlow package 'tensorflow_cpu'",
            "did you mean 'tensorflow-cpu'?",
        ],
    ),
    (
        "bad top-level tensorflow_package",
        _ENV + "tensorflow_package: tensorflow-gpu",
        ["tensorflow_package: unknown TensorFlow package 'tensorflow-gpu'", "did you mean"],
    ),
    (
        "bad name characters",
        'environments: [{name: "my env/1", python: "3.11", tensorflow: "2.16.2"}]',
        ["environments[0].name: expected at most 100 letters, digits", "found 'my env/1'"],
    ),
    (
        "unknown base_image placeholder",
        _ENV + 'base_image: "python:{version}-slim"',
        ["base_image: unknown placeholder '{version}'", "only {python} is allowed"],
    ),
    (
        "malformed base_image template",
        'environments: [{python: "3.11", tensorflow: "2.16.2", base_image: "python:{python"}]',
        ["environments[0].base_image: bad image template"],
    ),
    (
        "ca_bundle missing file",
        _ENV + "pip: {ca_bundle: certs/missing.pem}",
        ["pip.ca_bundle: file not found", "missing.pem"],
    ),
    (
        "pip list not a list",
        _ENV + "pip: {trusted_hosts: pypi.corp}",
        ["pip.trusted_hosts: expected a list of strings, found the string 'pypi.corp'"],
    ),
    (
        "pip unknown key",
        _ENV + "pip: {index-url: https://x}",
        ["pip.index-url: unknown key; did you mean 'index_url'?"],
    ),
    (
        "expect not a list of mappings",
        _ENV + "expect: [pass]",
        ["expect[0]: expected a non-empty mapping, found the string 'pass'"],
    ),
]


@pytest.mark.parametrize(
    ("text", "expected"),
    [(text, expected) for _, text, expected in BAD_INPUTS],
    ids=[case for case, _, _ in BAD_INPUTS],
)
def test_bad_input_is_reported(tmp_path: Path, text: str, expected: list[str]) -> None:
    error = _problems(tmp_path, text)
    message = "\n".join(error.problems)
    for fragment in expected:
        assert fragment in message
    assert str(error).startswith(str(tmp_path / "m.yaml") + ": ")


def test_several_problems_are_reported_together(tmp_path: Path) -> None:
    error = _problems(
        tmp_path,
        """
        matrx: {}
        models: [dens]
        tolerance: {rtol: -1}
        environments:
          - {python: 3.10, tensorfow: "2.16.2"}
        """,
    )
    assert len(error.problems) >= 5
    message = "\n".join(error.problems)
    for fragment in [
        "matrx: unknown key; did you mean 'matrix'?",
        "models[0]: unknown probe 'dens'",
        "tolerance.rtol",
        "environments[0].python: found the number 3.1",
        "environments[0].tensorfow: unknown key",
    ]:
        assert fragment in message
    assert "more problem(s)" in str(error)


def test_yaml_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    path = _write(tmp_path, 'name: x\nenvironments:\n  - {python: "3.11", tensorflow: "2.16.2"\n')
    with pytest.raises(MatrixError) as info:
        load_matrix(path)
    message = str(info.value)
    assert "m.yaml" in message
    assert "line 4" in message or "line 3" in message
    assert "invalid YAML" in message
    assert len(info.value.problems) == 1
    assert "\n" not in message


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(MatrixError) as info:
        load_matrix(tmp_path / "nope.yaml")
    assert str(info.value) == f"{tmp_path / 'nope.yaml'}: file not found"


def test_directory_instead_of_file(tmp_path: Path) -> None:
    with pytest.raises(MatrixError) as info:
        load_matrix(tmp_path)
    assert "is a directory" in str(info.value)


def test_non_utf8_file(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_bytes(b"name: \xff\xfe\n")
    with pytest.raises(MatrixError) as info:
        load_matrix(path)
    assert "not UTF-8" in str(info.value)


def test_bad_base_image_override(tmp_path: Path) -> None:
    path = _write(tmp_path, _ENV)
    with pytest.raises(MatrixError) as info:
        load_matrix(path, base_image="python:{py}")
    assert "--base-image/HARNESS_BASE_IMAGE: unknown placeholder '{py}'" in info.value.problems[0]


def test_parse_matrix_rejects_non_mapping_without_traceback() -> None:
    with pytest.raises(MatrixError) as info:
        parse_matrix(42, path="m.yaml", sha256="x")
    assert info.value.problems == ["top level: expected a mapping with 'matrix' or 'environments', found the number 42"]
