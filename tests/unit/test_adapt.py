"""Adapted files on the host, without Docker: a copy adapted for the target ranks and is handed over as a file made
again, a copy that fails verification is never written and the screen says which adapter failed and why, and
`harness adapt` writes one verified copy or nothing.

The fake engine plays the adapting loaders the way the agent does (harness/agent/formats.py): a copy and its
account (adapted.json) beside the load's predictions, the copy's load a record like any other.
"""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from fake_loads import LoadHook
from harness.advisor import adaptation
from harness.advisor.adapt import default_source
from harness.agent.protocol import ADAPTED, LOADERS, adapted_dir, sha256_file
from harness.cli import main
from harness.errors import UsageError

OLD_H5 = b"\x89HDF\r\n\x1a\n" + b'{"class_name": "Functional", "keras_version": "2.4.0", "backend": "tensorflow"}'
REFERENCE = np.linspace(0, 1, 8, dtype="float32").reshape(2, 4)  # what the fake engine's loads predict
K2, K3 = "py3.11-tf2.15.1", "py3.11-tf2.20.0"
# The fake's environments all say Keras 2.15: a cause whose rule holds between any releases.
CUDNN = "Unknown layer: 'CuDNNLSTM'. Please ensure you are using a `keras.utils.custom_object_scope`"
EDIT = "lstm: CuDNN-layout weights -> LSTM (kernels re-laid per gate, the two biases summed)"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "old.h5").write_bytes(OLD_H5)
    np.save(tmp_path / "x.npy", np.zeros((2, 3), dtype="float32"))
    np.save(tmp_path / "ref.npy", REFERENCE)
    return tmp_path


class AdaptedInKeras3(LoadHook):
    """The user's file fails in the Keras 3 target with every plain loader (CuDNN layers) and so do its migrated files;
    each adapting loader there makes a copy with an account, and loads it (`broken`: those whose copy fails to load,
    `drifting`: those whose copy predicts other numbers)."""

    broken: tuple[str, ...] = ()
    drifting: tuple[str, ...] = ()

    def change(self, target: str, record: dict[str, Any], output: Path) -> None:
        if target != K3 or not (record["source"].startswith("user-") or record["model"].endswith("-migrated")):
            return
        if not LOADERS[record["loader"]].adapts:
            self.fail_load(record, output, "ValueError", CUDNN)
            return
        if record["source"].startswith("user-"):
            self.adapt(record, output)

    def adapt(self, record: dict[str, Any], output: Path) -> None:
        folder = Path(adapted_dir(str(output)))
        folder.mkdir(parents=True, exist_ok=True)
        name = "old.keras" if LOADERS[record["loader"]].makes else "old.h5"
        (folder / name).write_bytes(b"adapted " + record["loader"].encode())
        account = {"schema": 1, "status": "adapted", "layout": "h5", "source_keras": "2.4.0", "target_keras": "3.15.1",
                   "adapters": [{"adapter": "cudnn-rnn-weights", "cause": "cudnn-rnn-weights", "edits": [EDIT]}],
                   "file": name, "hand": [name], "files": {name: sha256_file(str(folder / name))}}
        record.update(status="ok", loader_options={"adapted": ["cudnn-rnn-weights"]})
        record.pop("error", None)
        np.save(output, REFERENCE + np.float32(0.5 if record["loader"] in self.drifting else 0.0))
        if record["loader"] in self.broken:
            account.update(status="failed", file=None, hand=[], why=f"ValueError: {CUDNN}")
            (folder / name).unlink()
            self.fail_load(record, output, "ValueError", CUDNN)
        (folder / ADAPTED).write_text(json.dumps(account))


class CopiesFail(AdaptedInKeras3):
    broken = ("adapted_keras",)
    drifting = ("adapted",)


def _check(project: Path, engine: Any, *extra: str) -> int:
    out = [] if "--out" in extra else ["--out", str(project / "run")]
    return main(["check", "--from", "2.15.1", "--to", "2.20.0", "--model", str(project / "old.h5"), "--inputs",
                 str(project / "x.npy"), "--reference", str(project / "ref.npy"), *out, "--no-tf-keras", "-q", *extra],
                engine=engine)


def test_a_copy_adapted_for_the_target_is_ranked_named_and_handed_over_as_keras(
        project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _check(project, AdaptedInKeras3, "--migrate", str(project / "handed")) == 1
    out = capsys.readouterr().out
    assert "verdict: NOT SAFE by your route, but another route works" in out
    assert f"adapted: a copy edited for {K3}'s Keras (no model loaded with another Keras), then loaded there:" in out
    assert (".h5 / adapted for the target's Keras, saved there as .keras, then keras.models.load_model: matches "
            "bit-exactly") in out
    assert f"      edited: cudnn-rnn-weights: {EDIT}" in out
    verdict = json.loads((project / "run" / "check.json").read_text())
    adapted = [r for r in verdict["works"] if r["kind"] == "adapted"]
    assert [r["loader"] for r in adapted] == ["adapted_keras", "adapted"]  # Keras's own format first
    assert adapted[0]["change"] == "migrated" and adapted[0]["edits"] == [f"cudnn-rnn-weights: {EDIT}"]
    handed = json.loads((project / "handed" / "manifest.json").read_text())
    assert (handed["file"], handed["format"]) == ("old.keras", "keras")
    assert handed["made"]["adapters"][0]["edits"] == [EDIT] and handed["made"]["loader"] is None
    assert handed["verified"]["loaded_with"] == "keras.models.load_model"
    assert (project / "handed" / "old.keras").read_bytes() == b"adapted adapted_keras"
    code = (project / "handed" / "load.py").read_text()
    assert "model = keras.models.load_model(os.path.join(HERE, 'old.keras'))" in code
    assert f"migrated: {project / 'handed' / 'old.keras'}" in out and f"  edited: cudnn-rnn-weights: {EDIT}" in out


def test_a_copy_that_fails_verification_is_never_written_and_the_screen_says_which_adapter_and_why(
        project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _check(project, CopiesFail, "--migrate", str(project / "handed")) == 1
    out = capsys.readouterr().out
    assert f"adapted copies that failed verification in {K3} (never handed over):" in out
    assert ("adapter cudnn-rnn-weights (cudnn-rnn-weights) ran, yet the target still refuses the file: ValueError: "
            + CUDNN) in out
    assert "adapted by cudnn-rnn-weights, but its predictions differ from the original's" in out
    assert not (project / "handed").exists() or not any((project / "handed").iterdir())
    assert "nothing written" in out
    report = json.loads((project / "run" / "report.json").read_text())
    failed = [c for c in report["cells"] if c["loader"] == "adapted_keras" and c["target"] == K3]
    assert failed[0]["loader_options"]["adapted"]["status"] == "failed"


def test_adapt_writes_the_best_verified_copy_and_nothing_else(project: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    out_file = project / "new.keras"
    code = main(["adapt", str(project / "old.h5"), "--to", "2.20.0", "--inputs", str(project / "x.npy"),
                 "--reference", str(project / "ref.npy"), "--out", str(out_file), "--run-dir", str(project / "run"),
                 "-q"], engine=AdaptedInKeras3)
    out = capsys.readouterr().out
    assert code == 0, out
    assert out_file.read_bytes() == b"adapted adapted_keras"
    assert "adapted and verified: .h5 / adapted for the target's Keras, saved there as .keras" in out
    assert f"  edited: cudnn-rnn-weights: {EDIT}" in out and f"written: {out_file}" in out
    report = json.loads((project / "run" / "report.json").read_text())
    assert report["matrix"]["name"] == "adapt-old" and not report["migrations"]
    assert {c["loader"] for c in report["cells"]} <= {"load_model", "load_model_nocompile", "adapted",
                                                       "adapted_keras"}
    h5 = project / "new.h5"
    assert main(["adapt", str(project / "old.h5"), "--to", "2.20.0", "--inputs", str(project / "x.npy"), "--out",
                 str(h5), "--run-dir", str(project / "run2"), "-q"], engine=AdaptedInKeras3) == 0
    assert h5.read_bytes() == b"adapted adapted"  # --out's suffix chooses the copy


def test_adapts_first_answer_forecasts_the_file_as_it_is(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    real = project / "decay.h5"  # Keras 2.15's .h5 with a legacy decay: a config the table reads
    shutil.copyfile(Path(__file__).resolve().parents[1] / "agent" / "fixtures" / "legacy-decay-2.15.h5", real)
    main(["adapt", str(real), "--to", "2.20.0", "--inputs", str(project / "x.npy"), "--out",
          str(project / "new.keras"), "--run-dir", str(project / "run")], engine=AdaptedInKeras3)
    first = capsys.readouterr().out.split("confirming in containers...")[0]
    assert first.startswith("first answer, from the file alone")
    # The adapting loaders edit a copy the table of what each release accepts knows nothing of: not forecast.
    loaders = yaml.safe_load((project / "run" / "adapt.yaml").read_text())["models"][0]["loaders"]
    plain = [x for x in loaders if not LOADERS[x].adapts]
    assert len(plain) < len(loaders) and f"of {len(plain)} route(s) predicted to fail" in first, first


def test_adapt_writes_nothing_when_no_copy_passes(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out_file = project / "new.keras"
    code = main(["adapt", str(project / "old.h5"), "--to", "2.20.0", "--inputs", str(project / "x.npy"),
                 "--out", str(out_file), "--run-dir", str(project / "run"), "-q"], engine=CopiesFail)
    out = capsys.readouterr().out
    assert code == 1 and not out_file.exists()
    assert f"nothing written: no adapted copy predicts like the original in {K3}" in out
    assert "adapter cudnn-rnn-weights (cudnn-rnn-weights) ran, yet the target still refuses the file" in out


def test_adapt_refuses_bad_input_in_one_line_before_anything_runs(project: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    (project / "taken.keras").write_bytes(b"mine")
    for extra, words in ((["--out", str(project / "taken.keras")], "exists; name a new file"),
                         (["--out", str(project / "nowhere" / "x.keras")], "no folder"),
                         (["--to", "nonsense!"], "cannot read")):
        code = main(["adapt", str(project / "old.h5"), "--to", "2.20.0", "--inputs", str(project / "x.npy"),
                     "--run-dir", str(project / "run"), "-q", *extra], engine=AdaptedInKeras3)
        err = capsys.readouterr().err
        assert code == 2 and words in err and len(err.strip().splitlines()) == 1, err
    assert not (project / "run").exists() and (project / "taken.keras").read_bytes() == b"mine"


def test_a_file_that_says_its_keras_has_a_home_by_default(project: Path) -> None:
    assert default_source(str(project / "old.h5")) == "2.15.1"
    (project / "anon.h5").write_bytes(b"\x89HDF\r\n\x1a\n")
    with pytest.raises(UsageError, match="does not say which Keras wrote it"):
        default_source(str(project / "anon.h5"))


def _cell(loader: str, status: str, route_status: str, cause: str | None = None, **extra: Any) -> dict[str, Any]:
    return {"source": "a", "target": "b", "model": "m", "format": "h5", "loader": loader, "status": status,
            "route_status": route_status, "cause": cause, **extra}


def test_the_table_counts_broken_routes_by_cause_and_what_the_adapters_made_of_them() -> None:
    nothing = {"loader_options": {"adapted": {"status": "nothing", "adapters": []}}}
    cells = [
        _cell("load_model", "error", "breaks", "rnn-time-major"),
        _cell("adapted", "pass", "target_only"),
        {**_cell("load_model", "error", "breaks", "tf-op-lambda"), "model": "t"},
        {**_cell("adapted", "error", "unsupported", "cannot-adapt"), "model": "t"},
        {**_cell("load_model", "error", "breaks", "keras3-load-model-savedmodel"), "model": "s",
         "format": "savedmodel"},
        {**_cell("load_model", "error", "breaks", "depthwise-groups"), "model": "d"},
        {**_cell("adapted", "unsupported", "unsupported", **nothing), "model": "d"},
    ]
    assert adaptation.adaptation_table(cells) == {
        "depthwise-groups": {adaptation.VERIFIED: 0, adaptation.FAILED: 0, adaptation.NO_ADAPTER: 1},
        "keras3-load-model-savedmodel": {adaptation.VERIFIED: 0, adaptation.FAILED: 0, adaptation.NO_ADAPTER: 1},
        "rnn-time-major": {adaptation.VERIFIED: 1, adaptation.FAILED: 0, adaptation.NO_ADAPTER: 0},
        "tf-op-lambda": {adaptation.VERIFIED: 0, adaptation.FAILED: 1, adaptation.NO_ADAPTER: 0},
    }


@pytest.mark.parametrize(("cell", "words"), [
    (_cell("adapted", "error", "unsupported", "cannot-adapt", loader_options={"adapted": {"adapters": [
        {"adapter": "tf-op-lambda-layers", "cause": "tf-op-lambda", "edits": [], "cannot": "tf.math.reduce_sum"}]}}),
     "adapter tf-op-lambda-layers (tf-op-lambda) cannot adapt it: tf.math.reduce_sum"),
    (_cell("adapted", "unsupported", "unsupported", reason="r", loader_options={"adapted": {
        "status": "nothing", "why": "no adapter reads this kind of file"}}), "no adapter: no adapter reads this kind"),
    (_cell("adapted", "error", "unsupported", "tf-op-lambda", error={"type": "ValueError", "message": "Unknown"},
           loader_options={"adapted": {"layout": "keras", "adapters": [{"adapter": "keras3-module-paths",
                                                                        "edits": ["m"]}]}}),
     "adapted by keras3-module-paths; what remains (tf-op-lambda) has no adapter for keras files "
     "(tf-op-lambda-layers adapts h5 files): ValueError: Unknown"),
    (_cell("adapted", "error", "unsupported", "newer-keras-config", error={"type": "E", "message": "M"},
           loader_options={"adapted": {"layout": "h5", "adapters": [{"adapter": "keras2-optimizer", "edits": ["o"]}]}}),
     "what remains (newer-keras-config) has an adapter, initializer-axes, for other releases"),
    (_cell("adapted", "error", "unsupported", "keras2-file-in-keras3", error={"type": "E", "message": "M"},
           loader_options={"adapted": {"layout": "h5", "source_keras": "2.15.0", "target_keras": "3.3.3",
                                       "adapters": [{"adapter": "keras2-optimizer", "edits": ["o"]}]}}),
     "what remains (keras2-file-in-keras3) is nothing its adapters here (orthogonal-name, gru-implementation) know how "
     "to change: E: M"),
    (_cell("adapted", "error", "unsupported", "vocabulary-file", error={"type": "E", "message": "M"},
           loader_options={"adapted": {"adapters": [{"adapter": "keras3-module-paths", "edits": ["m"]}]}}),
     "what remains has no adapter (vocabulary-file): E: M"),
])
def test_why_an_adapted_copy_fails_names_the_adapter_and_the_cause(cell: dict[str, Any], words: str) -> None:
    assert words in adaptation.why_not(cell)


def test_the_account_a_container_wrote_is_kept_to_strings(tmp_path: Path) -> None:
    from harness.agent.protocol import CellKey
    from harness.rundir import RunDir

    run = RunDir(tmp_path)
    key = CellKey("a", "b", "m", "h5", "adapted")
    run.adapted(key).mkdir(parents=True)
    (run.adapted(key) / ADAPTED).write_text(json.dumps({"status": "adapted", "file": 3, "adapters": [
        {"adapter": "x", "cause": "y", "edits": ["e", 5]}, "junk"], "files": {"f": "d"}, "hand": ["f"]}))
    found = adaptation.account(run, key)
    assert found is not None and found["file"] == "3" and found["adapters"] == [
        {"adapter": "x", "cause": "y", "edits": ["e", "5"], "cannot": None}]
    assert adaptation.account(run, key._replace(loader="load_model")) is None


class WrapperMigrated(AdaptedInKeras3):
    """The migrated .keras file wraps a SavedModel in a TFSMLayer (as a Keras 3 home re-saving such a file writes it),
    and it is the only file made again that loads in the target (`h5`: its .h5 loads there too)."""

    h5 = False

    def _save(self, args: dict[str, Any], out: Path, records: Path) -> None:
        super()._save(args, out, records)
        manifest = json.loads((out / "manifest.json").read_text())
        for name, entry in manifest["models"].items():
            if "keras" in entry["formats"] and name.endswith("-migrated"):
                with zipfile.ZipFile(out / name / "keras" / "model", "w") as archive:
                    archive.writestr("config.json", json.dumps({"class_name": "Functional", "config": {"layers": [
                        {"class_name": "TFSMLayer", "config": {"filepath": "/models/serving"}}]}}))
                entry["formats"]["keras"]["files"] = {"keras/model": sha256_file(str(out / name / "keras" / "model"))}
        (out / "manifest.json").write_text(json.dumps(manifest))

    def change(self, target: str, record: dict[str, Any], output: Path) -> None:
        if target != K3 or LOADERS[record["loader"]].adapts:
            return
        migrated = record["model"].endswith("-migrated")
        if migrated and (record["format"] == "keras" or (self.h5 and record["format"] == "h5")):
            return  # loads in the target
        self.fail_load(record, output, "ValueError", CUDNN)


class WrapperAndH5Migrated(WrapperMigrated):
    h5 = True


def test_a_file_wrapping_a_savedmodel_is_never_handed_over_as_loading_by_default(
        project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _check(project, WrapperAndH5Migrated, "--migrate", str(project / "first"))
    assert json.loads((project / "first" / "manifest.json").read_text())["format"] == "h5"  # not the wrapper
    capsys.readouterr()
    _check(project, WrapperMigrated, "--migrate", str(project / "only"), "--out", str(project / "run2"))
    out = capsys.readouterr().out
    manifest = json.loads((project / "only" / "manifest.json").read_text())
    assert manifest["format"] == "keras" and "TFSMLayer" in manifest["note"] and "safe_mode=False" in manifest["note"]
    assert "  note: it wraps a SavedModel in a TFSMLayer" in out
    assert (project / "only" / "load.py").read_text().startswith("# NOTE: it wraps a SavedModel in a TFSMLayer")
