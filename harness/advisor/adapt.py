"""`harness adapt FILE --to SPEC`: a copy of one saved model edited for one target's Keras, verified there, written.

A check with one target and the adapting loaders (harness/agent/adapters.py) beside the file's
plain ones: the environments are built or reused, the file's reference predictions come from its
home (--from, else the newest TensorFlow of the Keras that wrote it), and each adapting loader edits
a copy for the target's Keras and loads it there with the target's own loader (safe mode on). The
report compares its predictions with the reference. The best copy that passed is written to --out,
checked against the sha256 recorded when it was made; when none passed nothing is written, and the
screen says which adapter failed and why.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from harness import untrusted
from harness.advisor import adaptation, words
from harness.advisor.answer import SAFE, route_from_dict
from harness.advisor.check import answer_question
from harness.advisor.question import ADAPT_LOADERS, AdaptQuestion, CheckQuestion, RunSettings
from harness.advisor.ranking import Route
from harness.agent.protocol import CellKey, sha256_file
from harness.errors import EXIT_FAILURES, EXIT_OK, UsageError
from harness.models import sniff_versions
from harness.report.statuses import WORKING
from harness.rundir import RunDir
from harness.workflow import RunEngine

KERAS2_HOME = "2.15.1"  # the newest TensorFlow whose own Keras is Keras 2: a Keras 2 file's home by default
KERAS3_HOME_TF = "2.20.0"  # a TensorFlow that runs every Keras 3 release: a Keras 3 file's home, with its Keras


def default_source(model: str) -> str:
    """--from when none is given: where the file's reference predictions come from, told by the Keras that wrote it."""
    path = Path(model)
    keras = sniff_versions(path, "keras" if path.suffix == ".keras" else "h5").get("keras")
    major = str(keras or "").split(".")[0]
    if major == "2":
        return KERAS2_HOME
    if major == "3":
        return f"{KERAS3_HOME_TF}+keras{keras}"
    raise UsageError(f"--from: {path.name} does not say which Keras wrote it; name the environment it loads in "
                     "(e.g. --from 2.15.1)")


def _check_out(out: Path | None) -> None:
    """--out must be a new file in an existing folder: nothing is written over (checked before anything is built)."""
    if out is None:
        return
    if out.exists() or out.is_symlink():
        raise UsageError(f"--out {out}: exists; name a new file (nothing is written over)")
    if not out.parent.is_dir():
        raise UsageError(f"--out {out}: no folder {out.parent}")


def _default_out(name: str) -> Path:
    """model.keras -> ./model.adapted.keras (in the working directory)."""
    stem, _, rest = name.partition(".")
    return Path.cwd() / f"{stem}.adapted.{rest}" if rest else Path.cwd() / f"{stem}.adapted"


def candidates(target: Mapping[str, Any]) -> list[Route]:
    """The adapted copies verified in the target, best first (the answer's order)."""
    return [route_from_dict(r) for r in target["works"] if adaptation.adapts(str(r["loader"]))
            and r.get("route_status") in WORKING]


def _planned(run_dir: RunDir, key: CellKey, out: Path | None) -> tuple[Mapping[str, Any], Path] | None:
    """(the account of one verified copy, where its file goes); None when its file is not of --out's kind (suffix)."""
    found = adaptation.account(run_dir, key)
    if not found or not found.get("file"):
        return None
    name = str(found["file"])
    if out is not None and out.suffix != Path(name).suffix:
        return None
    return found, out or _default_out(name)


def _copy(source: Path, dest: Path, expected: str) -> None:
    """Copy the verified copy to dest through a file beside it, its sha256 checked first: whole or not at all."""
    tmp = dest.with_name(f".{dest.name}.tmp")
    try:
        untrusted.copy_artifact(source, tmp)
        if sha256_file(str(tmp)) != expected:
            raise UsageError(f"{source} is not the file that was verified (its sha256 differs); nothing written")
        tmp.rename(dest)
    finally:
        if tmp.exists():
            tmp.unlink()


def write(run_dir: RunDir, report: Mapping[str, Any], model: str, out: Path | None) -> tuple[Route, Path] | None:
    """Write the best verified adapted copy of the check's only target; (its route, where it went), or None. An
    architecture JSON's weights go beside it, named after it."""
    check = report["check"]
    for route in candidates(check["targets"][0]):
        key = CellKey(str(check["source"]), str(route.env), model, route.format, route.loader)
        planned = _planned(run_dir, key, out)
        if planned is None:
            continue
        found, dest = planned
        if dest.exists():
            raise UsageError(f"--out {dest}: exists; name a new file (nothing is written over)")
        for name, digest in adaptation.hand_files(found).items():
            beside = dest.with_name(f"{dest.name.partition('.')[0]}.{name}")
            _copy(run_dir.adapted(key) / name, dest if name == found["file"] else beside, digest)
        return route, dest
    return None


def _lines(route: Route, tolerance: Mapping[str, float]) -> list[str]:
    lines = [f"adapted and verified: {words.steps(route)}", f"  {words.figures(route, tolerance)}"]
    return lines + [f"  edited: {e}" for e in route.edits]


def _failed(target: Mapping[str, Any]) -> list[str]:
    """Why no adapted copy was written: each adapting route in the target that did not work, and why."""
    routes: Sequence[Mapping[str, Any]] = target.get("adapted") or []
    lines = [f"  x {r['step']}: {r.get('detail') or r['status']}" for r in routes
             if r.get("route_status") not in WORKING]
    return lines or ["  no adapting loader ran on this file"]


def adapt_screen(answered_screen: str, report: Mapping[str, Any], written: tuple[Route, Path] | None,
                 out: Path | None) -> str:
    """The check's screen, then what was adapted and written (or why nothing was)."""
    target = report["check"]["targets"][0]
    lines = [answered_screen.rstrip("\n"), ""]
    verified = candidates(target)
    if written is not None:
        route, dest = written
        lines += [*_lines(route, report["tolerance"]), f"written: {dest}"]
    elif verified:
        lines.append(f"nothing written: no verified copy is a {out.suffix if out else ''} file; verified: "
                     + "; ".join(words.steps(r) for r in verified))
    elif target["verdict"] == SAFE:
        lines.append("nothing to adapt: your file loads as it is in the target, and no adapter had anything to change")
    else:
        lines += [f"nothing written: no adapted copy predicts like the original in {target['target']}",
                  *_failed(target)]
    return "\n".join(lines) + "\n"


def run_adapt(question: AdaptQuestion, settings: RunSettings, engine: RunEngine) -> int:
    """Adapt, verify and write one file for one target; 0 when a verified copy was written (or none was needed)."""
    _check_out(question.out)
    source = question.source or default_source(question.model.model)
    check = CheckQuestion(source=source, targets=(question.target,), model=replace(question.model,
                          loaders=ADAPT_LOADERS), tf_keras=False, migration=False)
    answered = answer_question(check, settings, engine, name="adapt")
    if isinstance(answered, int):
        return answered
    model = answered.matrix.models[0].name
    written = write(answered.run_dir, answered.report, model, question.out)
    print(adapt_screen(answered.screen, answered.report, written, question.out), end="")
    target = answered.report["check"]["targets"][0]
    return EXIT_OK if written is not None or (target["verdict"] == SAFE and not candidates(target)) else EXIT_FAILURES

