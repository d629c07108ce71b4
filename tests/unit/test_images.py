"""Unit tests for harness.images (Dockerfile rendering, content-hash tags, pip settings) and
harness.engine.build_error_line. Pure: no Docker."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

import pytest

from fake_engine import FakeEngine
from harness.engine import BuildResult, build_error_line
from harness.errors import UsageError
from harness.images import (
    IMAGE_REPO,
    build_pip_settings,
    direct_build_args,
    dockerfiles_dir,
    effective_pip_settings,
    ensure_image,
    plan_image,
    split_requirements,
)
from harness.matrix import Environment, PipSettings
from harness.wheelcache import Link, WheelCache

REPO_ROOT = Path(__file__).resolve().parents[2]
NO_PIP = PipSettings()


def _env(**overrides: object) -> Environment:
    fields: dict[str, object] = {
        "id": "py3.11-tf2.16.2",
        "python": "3.11",
        "tensorflow": "==2.16.2",
        "base_image": "python:3.11-slim",
    }
    fields.update(overrides)
    return Environment(**fields)  # type: ignore[arg-type]


class _NoUpstream:
    """An index that knows no project."""

    def project(self, project: str) -> tuple[list[Link], bool]:
        return [], True


def _legacy(package: str = "tensorflow-cpu") -> Environment:
    return _env(id="legacy", legacy_keras=True, tf_keras="==2.16.*", tensorflow_package=package)


# ---------------------------------------------------------------------------- tags


def test_same_environment_renders_the_same_tag_twice() -> None:
    first = plan_image(_env(), NO_PIP)
    second = plan_image(_env(), NO_PIP)
    assert first.tag == second.tag
    assert first.dockerfile == second.dockerfile
    assert dict(first.files) == dict(second.files)
    assert re.fullmatch(rf"{IMAGE_REPO}:[0-9a-f]{{20}}", first.tag)


def test_env_id_does_not_change_the_tag() -> None:
    # The tag is a hash of the build context: two ids for the same content share one image.
    assert plan_image(_env(id="a"), NO_PIP).tag == plan_image(_env(id="b"), NO_PIP).tag
    assert plan_image(_env(id="a"), NO_PIP).env_id == "a"


@pytest.mark.parametrize(
    "change",
    [
        {"tensorflow": "==2.17.0"},
        {"python": "3.12"},
        {"base_image": "python:3.11-bookworm"},
        {"keras": "==3.3.3"},
        {"packages": ("h5py==3.8.0",)},
        {"tensorflow_package": "tensorflow"},
        {"legacy_keras": True, "tf_keras": "==2.16.*"},
    ],
    ids="+".join,
)
def test_any_content_change_changes_the_tag(change: dict[str, object]) -> None:
    base = plan_image(_env(), NO_PIP)
    changed = plan_image(_env(**change), NO_PIP)
    assert changed.tag != base.tag


def test_the_index_never_changes_the_tag_nor_enters_the_image() -> None:
    # A rotated token in the index URL must not rebuild every image, nor sit in the image for loaded code to read.
    cached = plan_image(_env())
    secret = PipSettings(index_url="https://user:tok3n@mirror.example/simple", trusted_hosts=("mirror.example",))
    direct = plan_image(_env(), secret)
    assert direct.tag == cached.tag
    assert "tok3n" not in direct.dockerfile and all(b"tok3n" not in data for data in direct.files.values())
    assert direct.build_args == {"PIP_INDEX_URL": "https://user:tok3n@mirror.example/simple",
                                 "PIP_TRUSTED_HOST": "mirror.example"}
    assert (cached.cached, direct.cached) == (True, False)
    assert cached.build_args == {}
    for name in ("PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_TRUSTED_HOST"):
        assert f"ARG {name}\n" in cached.dockerfile  # declared without a default: unset unless given
    assert "pip.conf" not in cached.dockerfile


def test_direct_build_args_leave_out_what_is_not_set() -> None:
    assert direct_build_args(NO_PIP) == {}
    assert direct_build_args(PipSettings(extra_index_urls=("https://a/simple", "https://b/simple"))) == {
        "PIP_EXTRA_INDEX_URL": "https://a/simple https://b/simple"}


def test_builds_use_the_wheel_cache_unless_it_is_off_or_the_engine_is_remote() -> None:
    assert build_pip_settings(NO_PIP, {}) is None
    assert build_pip_settings(NO_PIP, {"DOCKER_HOST": "unix:///var/run/docker.sock"}) is None
    assert build_pip_settings(NO_PIP, {"HARNESS_WHEEL_CACHE": "off"}) == NO_PIP
    assert build_pip_settings(NO_PIP, {"DOCKER_HOST": "ssh://builder"}) == NO_PIP
    assert build_pip_settings(NO_PIP, {"CONTAINER_HOST": "tcp://10.0.0.2:8080"}) == NO_PIP
    assert build_pip_settings(NO_PIP, {"DOCKER_HOST": "tcp://127.0.0.1:2375"}) is None  # this host after all


def test_ca_bundle_path_and_content_do_not_change_the_tag(tmp_path: Path) -> None:
    # A build that reaches the index itself gets the CA bundle copied in: only its *presence* enters
    # the hash (the Dockerfile COPY line), so a rotated certificate does not rebuild every image.
    # Through the wheel cache the bundle stays on the host and the image does not change at all.
    ca_a = tmp_path / "a.pem"
    ca_b = tmp_path / "b.pem"
    ca_a.write_text("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
    ca_b.write_text("-----BEGIN CERTIFICATE-----\nBBBB\n-----END CERTIFICATE-----\n")
    with_a = plan_image(_env(), PipSettings(ca_bundle=str(ca_a)))
    with_b = plan_image(_env(), PipSettings(ca_bundle=str(ca_b)))
    assert with_a.tag == with_b.tag
    assert with_a.ca_bundle == str(ca_a)
    assert with_b.ca_bundle == str(ca_b)
    assert "ca-bundle.pem" not in with_a.files  # the content is copied at build time only
    # ... but having a CA bundle at all does change the image
    assert plan_image(_env(), NO_PIP).tag != with_a.tag
    assert "COPY ca-bundle.pem /etc/harness/ca-bundle.pem" in with_a.dockerfile
    assert "ARG PIP_CERT=/etc/harness/ca-bundle.pem" in with_a.dockerfile
    assert plan_image(_env()).ca_bundle is None
    assert plan_image(_env()).tag == plan_image(_env(), NO_PIP).tag


# ---------------------------------------------------------------------------- Dockerfile content


def test_dockerfile_uses_the_base_image_and_the_python_venv() -> None:
    plan = plan_image(_env(python="3.12", base_image="registry.example/py:3.12"), NO_PIP)
    assert "FROM registry.example/py:3.12\n" in plan.dockerfile
    assert "python3.12 -m venv /opt/venv" in plan.dockerfile
    assert "TF_USE_LEGACY_KERAS" not in plan.dockerfile
    assert "--no-deps" not in plan.dockerfile
    assert "pip.conf" not in plan.dockerfile  # no pip settings, no pip.conf
    assert set(plan.files) == {"requirements.txt"}


def test_requirements_file_lists_tensorflow_keras_and_packages_in_order() -> None:
    env = _env(keras="==3.3.3", packages=("h5py==3.8.0", "numpy<2"))
    plan = plan_image(env, NO_PIP)
    assert plan.files["requirements.txt"].decode().splitlines() == [
        "tensorflow-cpu==2.16.2",
        "keras==3.3.3",
        "h5py==3.8.0",
        "numpy<2",
    ]


def test_legacy_tf_keras_with_tensorflow_cpu_is_installed_without_deps() -> None:
    plan = plan_image(_legacy("tensorflow-cpu"), NO_PIP)
    assert plan.files["requirements-nodeps.txt"].decode().splitlines() == ["tf-keras==2.16.*"]
    assert "tf-keras" not in plan.files["requirements.txt"].decode()
    assert "COPY requirements-nodeps.txt /etc/harness/requirements-nodeps.txt" in plan.dockerfile
    assert "--no-deps -r /etc/harness/requirements-nodeps.txt" in plan.dockerfile
    assert "TF_USE_LEGACY_KERAS=1" in plan.dockerfile


def test_legacy_tf_keras_with_full_tensorflow_goes_to_requirements_txt() -> None:
    plan = plan_image(_legacy("tensorflow"), NO_PIP)
    assert plan.files["requirements.txt"].decode().splitlines() == ["tensorflow==2.16.2", "tf-keras==2.16.*"]
    assert "requirements-nodeps.txt" not in plan.files
    assert "--no-deps" not in plan.dockerfile
    assert "TF_USE_LEGACY_KERAS=1" in plan.dockerfile


def test_split_requirements_without_tf_keras_pin() -> None:
    normal, nodeps = split_requirements(_env(legacy_keras=True))
    assert normal == ["tensorflow-cpu==2.16.2"]
    assert nodeps == ["tf-keras"]


def test_a_build_takes_its_index_from_the_wheel_cache_and_counts_what_it_fetched(tmp_path: Path) -> None:
    engine = FakeEngine()
    cache = WheelCache(tmp_path / "cache", NO_PIP, upstream=_NoUpstream())
    plan = plan_image(_env())
    with cache.serving():
        outcome = ensure_image(engine, plan, tmp_path / "build.log", cache)
        url = cache.url
    args, network = engine.build_args[0]
    assert network == "host"  # the build reaches the cache on this host's loopback
    assert re.fullmatch(re.escape(url) + r"/b\d+/simple/", args["PIP_INDEX_URL"])
    assert outcome.wheels is not None and outcome.wheels.downloaded == 0


def test_a_direct_build_passes_the_index_as_build_arguments(tmp_path: Path) -> None:
    engine = FakeEngine()
    plan = plan_image(_env(), PipSettings(index_url="https://mirror.example/simple"))
    outcome = ensure_image(engine, plan, tmp_path / "build.log", cache=None)
    assert engine.build_args == [({"PIP_INDEX_URL": "https://mirror.example/simple"}, None)]
    assert outcome.wheels is None


def test_an_existing_image_is_reused_without_a_build(tmp_path: Path) -> None:
    engine = FakeEngine()
    plan = plan_image(_env())
    engine.images[plan.tag] = "sha256:abc"
    outcome = ensure_image(engine, plan, tmp_path / "build.log")
    assert (outcome.built, outcome.image_id, engine.builds) == (False, "sha256:abc", [])


def test_missing_template_is_a_usage_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HARNESS_DOCKERFILES", str(tmp_path))
    with pytest.raises(UsageError, match=r"env\.Dockerfile\.j2 not found"):
        plan_image(_env(), NO_PIP)


def test_dockerfiles_dir_honours_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HARNESS_DOCKERFILES", str(tmp_path))
    assert dockerfiles_dir() == tmp_path
    (tmp_path / "env.Dockerfile.j2").write_text("FROM {{ base_image }}\n# custom {{ python }}\n")
    plan = plan_image(_env(), NO_PIP)
    assert plan.dockerfile == "FROM python:3.11-slim\n# custom 3.11\n"


def test_dockerfiles_dir_default_holds_the_template(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HARNESS_DOCKERFILES", raising=False)
    found = dockerfiles_dir()
    assert (found / "env.Dockerfile.j2").is_file()
    assert (found / "env.Dockerfile.j2").read_text() == (REPO_ROOT / "dockerfiles" / "env.Dockerfile.j2").read_text()


# ---------------------------------------------------------------------------- pip settings


def test_matrix_pip_keys_win_over_the_environment(tmp_path: Path) -> None:
    ca_matrix = tmp_path / "matrix.pem"
    ca_env = tmp_path / "env.pem"
    ca_matrix.write_text("m")
    ca_env.write_text("e")
    matrix_pip = PipSettings(
        index_url="https://matrix.example/simple",
        extra_index_urls=("https://matrix-extra.example/simple",),
        trusted_hosts=("matrix.example",),
        ca_bundle=str(ca_matrix),
    )
    environ = {
        "PIP_INDEX_URL": "https://env.example/simple",
        "PIP_EXTRA_INDEX_URL": "https://env-extra.example/simple",
        "PIP_TRUSTED_HOST": "env.example",
        "PIP_CERT": str(ca_env),
    }
    assert effective_pip_settings(matrix_pip, environ) == matrix_pip


def test_host_pip_variables_pass_through() -> None:
    environ = {
        "PIP_INDEX_URL": "https://env.example/simple",
        "PIP_EXTRA_INDEX_URL": "https://a.example/simple  https://b.example/simple",
        "PIP_TRUSTED_HOST": "a.example b.example",
    }
    got = effective_pip_settings(NO_PIP, environ)
    assert got.index_url == "https://env.example/simple"
    assert got.extra_index_urls == ("https://a.example/simple", "https://b.example/simple")
    assert got.trusted_hosts == ("a.example", "b.example")
    assert got.ca_bundle is None


def test_no_settings_anywhere_gives_defaults() -> None:
    assert effective_pip_settings(NO_PIP, {}) == PipSettings()
    assert direct_build_args(effective_pip_settings(NO_PIP, {})) == {}


def test_file_urls_are_dropped() -> None:
    environ = {
        "PIP_INDEX_URL": "file:///srv/wheels",
        "PIP_EXTRA_INDEX_URL": "file:///srv/more https://b.example/simple",
    }
    got = effective_pip_settings(NO_PIP, environ)
    assert got.index_url is None
    assert got.extra_index_urls == ("https://b.example/simple",)
    matrix_pip = PipSettings(index_url="file:/local", extra_index_urls=("file:///x",))
    from_matrix = effective_pip_settings(matrix_pip, {})
    assert from_matrix.index_url is None
    assert from_matrix.extra_index_urls == ()


@pytest.mark.parametrize(
    ("present", "expected"),
    [
        (("PIP_CERT", "REQUESTS_CA_BUNDLE", "SSL_CERT_FILE"), "PIP_CERT"),
        (("REQUESTS_CA_BUNDLE", "SSL_CERT_FILE"), "REQUESTS_CA_BUNDLE"),
        (("SSL_CERT_FILE",), "SSL_CERT_FILE"),
    ],
)
def test_ca_bundle_variable_precedence(tmp_path: Path, present: tuple[str, ...], expected: str) -> None:
    environ = {}
    for name in present:
        path = tmp_path / f"{name}.pem"
        path.write_text(name)
        environ[name] = str(path)
    assert effective_pip_settings(NO_PIP, environ).ca_bundle == str(tmp_path / f"{expected}.pem")


def test_ca_bundle_that_does_not_exist_is_dropped(tmp_path: Path) -> None:
    for name in ("PIP_CERT", "REQUESTS_CA_BUNDLE", "SSL_CERT_FILE"):
        assert effective_pip_settings(NO_PIP, {name: str(tmp_path / "missing.pem")}).ca_bundle is None
    assert effective_pip_settings(PipSettings(ca_bundle=str(tmp_path / "nope.pem")), {}).ca_bundle is None
    assert effective_pip_settings(NO_PIP, {"PIP_CERT": str(tmp_path)}).ca_bundle is None  # a directory


def test_ca_falls_back_to_the_next_variable_that_names_a_file(tmp_path: Path) -> None:
    real = tmp_path / "real.pem"
    real.write_text("-----BEGIN CERTIFICATE-----\n")
    environ = {"PIP_CERT": str(tmp_path / "missing.pem"), "SSL_CERT_FILE": str(real)}
    assert effective_pip_settings(NO_PIP, environ).ca_bundle == str(real)


# ---------------------------------------------------------------------------- build_error_line


def test_build_error_line_prefers_no_matching_distribution() -> None:
    log = "\n".join([
        "#7 [3/5] RUN pip install -r /etc/harness/requirements.txt",
        "#7 1.234 ERROR: Could not find a version that satisfies the requirement tensorflow-cpu==9.9",
        "ERROR: Ignored the following versions that require a different python version",
        "  ERROR: No matching distribution found for tensorflow-cpu==9.9  ",
        "ERROR: failed to solve: process did not complete successfully: exit code: 1",
    ])
    assert build_error_line(log) == "ERROR: No matching distribution found for tensorflow-cpu==9.9"


def test_build_error_line_then_could_not_find_then_any_pip_error() -> None:
    assert build_error_line(
        "ERROR: something first\nERROR: Could not find a version that satisfies x\n"
    ) == "ERROR: Could not find a version that satisfies x"
    assert build_error_line("step 1\nERROR: first one\nERROR: second one\n") == "ERROR: first one"


def test_build_error_line_falls_back_to_the_last_error_mention_then_last_line() -> None:
    assert build_error_line("step 1\nfailed: error pulling image\nstep 2\ncleanup\n") == "failed: error pulling image"
    assert build_error_line("step 1\n   \nsomething went wrong   \n\n") == "something went wrong"
    assert build_error_line("") == "build failed with no output"
    assert build_error_line("\n  \n") == "build failed with no output"


BUILDKIT_LOG = """\
#0 building with "default" instance using docker driver

#7 [4/5] RUN pip install --progress-bar off -r /etc/harness/requirements.txt
#7 1.893 ERROR: Could not find a version that satisfies the requirement tensorflow-cpu==9.9.9 (from versions: 2.16.2)
#7 1.894 ERROR: No matching distribution found for tensorflow-cpu==9.9.9
#7 ERROR: process "/bin/sh -c pip install --progress-bar off -r /etc/harness/requirements.txt" did not complete \
successfully: exit code: 1
------
 > [4/5] RUN pip install --progress-bar off -r /etc/harness/requirements.txt:
1.893 ERROR: Could not find a version that satisfies the requirement tensorflow-cpu==9.9.9 (from versions: 2.16.2)
1.894 ERROR: No matching distribution found for tensorflow-cpu==9.9.9
------
ERROR: failed to solve: process "/bin/sh -c pip install --progress-bar off -r /etc/harness/requirements.txt" did not \
complete successfully: exit code: 1
"""


def test_build_error_line_finds_pip_error_in_buildkit_plain_log() -> None:
    assert build_error_line(BUILDKIT_LOG).endswith("ERROR: No matching distribution found for tensorflow-cpu==9.9.9")


# ---------------------------------------------------------------------------- the TensorFlow layer, shared


def test_environments_on_one_python_and_tensorflow_share_its_image() -> None:
    keras_a, keras_b = plan_image(_env(keras="==3.3.3")), plan_image(_env(keras="==3.4.1"))
    legacy = plan_image(_legacy())
    alone = plan_image(_env())
    assert keras_a.parent is not None and keras_b.parent is not None and legacy.parent is not None
    assert keras_a.parent.tag == keras_b.parent.tag == legacy.parent.tag == alone.tag
    assert alone.parent is None  # TensorFlow alone: that image is the environment's, rendered as it always was
    assert f"FROM {alone.tag}\n" in keras_a.dockerfile
    assert keras_a.parent.files["requirements.txt"] == b"tensorflow-cpu==2.16.2\n"
    assert "TF_USE_LEGACY_KERAS" not in keras_a.parent.dockerfile + keras_a.dockerfile
    assert "ENV TF_USE_LEGACY_KERAS=1" in legacy.dockerfile  # above the shared layer, not in it
    other_tf = plan_image(_env(tensorflow="==2.17.0", keras="==3.3.3"))
    other_python = plan_image(_env(python="3.12", keras="==3.3.3"))
    assert other_tf.parent is not None and other_python.parent is not None
    assert len({keras_a.parent.tag, other_tf.parent.tag, other_python.parent.tag}) == 3


def test_a_keras_change_changes_the_tag_but_not_the_tensorflow_image() -> None:
    before, after = plan_image(_env(keras="==3.3.3")), plan_image(_env(keras="==3.3.2"))
    assert before.tag != after.tag
    assert before.parent == after.parent


def test_the_tensorflow_image_is_built_once_and_first(tmp_path: Path) -> None:
    engine = FakeEngine()
    plans = [plan_image(_env(keras="==3.3.3")), plan_image(_env(keras="==3.4.1"))]
    first = ensure_image(engine, plans[0], tmp_path / "a" / "build.log")
    second = ensure_image(engine, plans[1], tmp_path / "b" / "build.log")
    assert plans[0].parent is not None
    assert engine.builds == [plans[0].parent.tag, plans[0].tag, plans[1].tag]
    assert first.built and second.built and first.error is None


def test_a_tensorflow_image_that_fails_fails_its_environments(tmp_path: Path) -> None:
    plan = plan_image(_env(keras="==3.3.3"))
    assert plan.parent is not None
    engine = FakeEngine(failing_tags=frozenset({plan.parent.tag}))
    outcome = ensure_image(engine, plan, tmp_path / "build.log")
    assert outcome.tag == plan.tag and outcome.image_id is None
    assert outcome.error is not None and outcome.error.startswith(f"its TensorFlow image {plan.parent.tag}: ")
    assert engine.builds == [plan.parent.tag]


class _HiccupEngine(FakeEngine):
    """An engine whose first build of each tag fails as a network or storage hiccup does."""

    def build(self, context: Path, tag: str, labels: Mapping[str, str], build_args: Mapping[str, str],
              log_path: Path, *, network: str | None = None) -> BuildResult:
        if tag not in self.builds:
            self.builds.append(tag)
            log_path.parent.mkdir(parents=True, exist_ok=True)
            log_path.write_text("Error: committing container for step: layer not known\n")
            return BuildResult(ok=False, seconds=2.0, error="Error: committing container for step: layer not known")
        return super().build(context, tag, labels, build_args, log_path, network=network)


def test_a_build_that_failed_on_a_hiccup_is_tried_once_more(tmp_path: Path) -> None:
    plan = plan_image(_env())
    engine = _HiccupEngine()
    outcome = ensure_image(engine, plan, tmp_path / "build.log")
    assert outcome.error is None and outcome.image_id is not None
    assert engine.builds == [plan.tag, plan.tag] and outcome.seconds == pytest.approx(2.1)
    assert "layer not known" in (tmp_path / "build-failed.log").read_text()  # the failed attempt's log, kept


def test_pips_answer_about_the_requirements_is_not_asked_again(tmp_path: Path) -> None:
    plan = plan_image(_env())
    engine = FakeEngine(failing_tags=frozenset({plan.tag}))
    outcome = ensure_image(engine, plan, tmp_path / "build.log")
    assert outcome.error is not None and engine.builds == [plan.tag]


def test_a_full_disk_is_not_tried_again(tmp_path: Path) -> None:
    class _FullDisk(FakeEngine):
        def build(self, context: Path, tag: str, labels: Mapping[str, str], build_args: Mapping[str, str],
                  log_path: Path, *, network: str | None = None) -> BuildResult:
            self.builds.append(tag)
            return BuildResult(ok=False, seconds=1.0, error="ERROR: Could not install packages due to an OSError: "
                               "[Errno 28] No space left on device")

    engine = _FullDisk()
    outcome = ensure_image(engine, plan_image(_env()), tmp_path / "build.log")
    assert outcome.error is not None and "No space left" in outcome.error and len(engine.builds) == 1
