"""python -m harness check: is it safe to move THIS model from one environment to another, and if not, what works.

The check is a two-environment matrix made in memory and run by `run` itself: the same run
directory and reports, plus check.yaml (the matrix, to rerun with `run`) and check.json (the
verdict). The verdict is a pure function of the report's cells.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import MatrixError, UsageError
from harness.matrix import Matrix

DEFAULT_PYTHON = "3.11"  # TensorFlow 2.12 to 2.20 all have wheels for it

SAFE, SAFE_ELSEWHERE, UNSAFE = "safe", "safe via another route", "unsafe"
LOADER_WORDS = {
    "load_model": "keras.models.load_model", "load_model_unsafe": "load_model(safe_mode=False)",
    "load_model_nocompile": "load_model(compile=False)",
    "rebuild": "rebuild in code + load_weights", "model_from_json": "model_from_json + load_weights",
    "saved_model": "tf.saved_model.load, serving signature", "tfsm_layer": "keras.layers.TFSMLayer",
}
FORMAT_WORDS = {"h5": ".h5", "keras": ".keras", "savedmodel": "SavedModel", "weights_h5": "weights .h5",
                "tf_checkpoint": "TF checkpoint", "json": "JSON + weights", "export": "model.export() SavedModel"}
# Routes that change least for the user come first among equally good ones.
LOADER_ORDER = ("load_model", "load_model_nocompile", "load_model_unsafe", "rebuild", "model_from_json", "tfsm_layer",
                "saved_model")
MAX_LINES = 6  # routes listed per section: the whole verdict fits one screen


@dataclass(frozen=True)
class Route:
    """One (format, loader) way from the saved model to predictions in the target, and how it went."""

    format: str
    loader: str
    status: str
    max_abs_diff: float | None = None
    bit_exact: bool | None = None
    detail: str | None = None  # the error or the reason for drift
    hint: str | None = None

    def words(self) -> str:
        """'.keras / keras.models.load_model'."""
        return f"{FORMAT_WORDS.get(self.format, self.format)} / {LOADER_WORDS.get(self.loader, self.loader)}"


@dataclass(frozen=True)
class Verdict:
    """Safe by the current route, safe only by another, or unsafe; with what breaks and what works."""

    status: str
    route: Route | None
    works: list[Route] = field(default_factory=list)
    breaks: list[Route] = field(default_factory=list)
    at_home: Route | None = None  # the current route where the model comes from

    @property
    def exit_code(self) -> int:
        """0 when the model survives by its current route."""
        return 0 if self.status == SAFE else 1


def _route(cell: dict[str, Any]) -> Route:
    error = cell.get("error") or {}
    detail = f"{error.get('type')}: {error.get('message')}" if error else cell.get("reason")
    return Route(format=cell["format"], loader=cell["loader"], status=cell["status"],
                 max_abs_diff=cell.get("max_abs_diff"), bit_exact=cell.get("bit_exact"), detail=detail,
                 hint=error.get("hint") or cell.get("hint"))


def _preference(route: Route, current: tuple[str, str]) -> tuple[Any, ...]:
    diff = route.max_abs_diff if route.max_abs_diff is not None and math.isfinite(route.max_abs_diff) else math.inf
    loader = LOADER_ORDER.index(route.loader) if route.loader in LOADER_ORDER else len(LOADER_ORDER)
    return (not route.bit_exact, diff, route.format != current[0], loader, route.format)


def decide(cells: Sequence[dict[str, Any]], *, model: str, source: str, target: str, home: str,
           route: tuple[str, str]) -> Verdict:
    """The verdict for `model` moved from `source` (an environment, or an artifact's pseudo-source) to `target`.

    `home` is the environment the model comes from (where the current route is known to work).
    """
    pair = [c for c in cells if (c["model"], c["source"], c["target"]) == (model, source, target)]
    by_route = {(c["format"], c["loader"]): _route(c) for c in pair}
    at_home = next((_route(c) for c in cells if (c["model"], c["source"], c["target"], c["format"], c["loader"])
                    == (model, source, home, *route)), None)
    works = sorted((r for r in by_route.values() if r.status == "pass"), key=lambda r: _preference(r, route))
    breaks = [r for r in by_route.values() if r.status in ("drift", "error", "crash", "timeout")]
    current = by_route.get(route)
    survives = current is not None and current.status == "pass"
    status = SAFE if survives else SAFE_ELSEWHERE if works else UNSAFE
    return Verdict(status=status, route=current, works=works, breaks=breaks, at_home=at_home)


# ---------------------------------------------------------------------------- the screen


def _figures(route: Route, tolerance: dict[str, float]) -> str:
    if route.bit_exact:
        return "matches bit-exactly"
    if route.max_abs_diff is None:
        return "matches"
    return f"matches within {route.max_abs_diff:.2g} (atol {tolerance['atol']:g} + rtol {tolerance['rtol']:g})"


def _env_words(env: dict[str, Any]) -> str:
    if env.get("image") is None and env.get("spec", {}).get("artifact"):
        keras = f"Keras {env['keras']}" if env.get("keras") else "Keras version unknown"
        return f"{Path(env['spec']['artifact']).name} (saved elsewhere; {keras})"
    return (f"Python {env.get('python')}, TensorFlow {env.get('tensorflow')}, Keras {env.get('keras')}"
            + (f" ({env['keras_package']})" if env.get("keras_package") == "tf-keras" else ""))


def render(verdict: Verdict, report: dict[str, Any], *, source: str, home: str, target: str,
           route: tuple[str, str], run_dir: Path) -> str:
    """One screen: verdict, what breaks, which routes work, where the report is."""
    envs = {e["id"]: e for e in report["environments"]}
    current = Route(route[0], route[1], "?")
    lines = [f"model  {report['models'][-1]['name']}: {report['models'][-1]['description']}"]
    if source != home:
        lines.append(f"saved  {source}: {_env_words(envs[source])}")
    lines += [f"from   {home}: {_env_words(envs[home])}", f"to     {target}: {_env_words(envs[target])}",
              f"route  {current.words()}", ""]
    headline = {SAFE: "SAFE: your route works in the target",
                SAFE_ELSEWHERE: "NOT SAFE by your route, but another route works",
                UNSAFE: "UNSAFE: no route tried loads it with the same predictions"}[verdict.status]
    lines.append(f"verdict: {headline}")
    if verdict.at_home is not None and verdict.at_home.status != "pass":
        lines.append(f"  note: your route does not work in {home} either ({verdict.at_home.status})")
    lines += [f"  note: {e['id']} has no image ({e.get('status')}): {e.get('error')}" for e in report["environments"]
              if e.get("status", "ok") != "ok"]
    lines += _breaks(verdict, target) + _works(verdict, report["tolerance"])
    lines += ["", f"report: {run_dir / 'report.html'}  (run directory {run_dir})"]
    return "\n".join(lines) + "\n"


def _breaks(verdict: Verdict, target: str) -> list[str]:
    if not verdict.breaks:
        return []
    lines = ["", f"what breaks in {target}:"]
    ordered = sorted(verdict.breaks, key=lambda r: (verdict.route is None or r != verdict.route, r.format, r.loader))
    seen: set[str] = set()
    for route in ordered[:MAX_LINES]:
        detail = re.sub(r"\s+", " ", route.detail or "")
        lines.append(f"  x {route.words()}: {route.status}: {detail[:110]}{'...' if len(detail) > 110 else ''}")
        if route.hint and route.hint not in seen:
            lines.append(f"      hint: {route.hint}")
            seen.add(route.hint)
    if len(ordered) > MAX_LINES:
        lines.append(f"  ... and {len(ordered) - MAX_LINES} more in the report")
    return lines


def _works(verdict: Verdict, tolerance: dict[str, float]) -> list[str]:
    if not verdict.works:
        return ["", "no route works: rebuild the model in the new version and retrain, or stay on the old one"]
    lines = ["", "routes that work:"]
    lines += [f"  ok {r.words()}: {_figures(r, tolerance)}" for r in verdict.works[:MAX_LINES]]
    if len(verdict.works) > MAX_LINES:
        lines.append(f"  ... and {len(verdict.works) - MAX_LINES} more in the report")
    return lines


# ---------------------------------------------------------------------------- the command


def add_parser(sub: Any) -> None:
    """The `check` subcommand's arguments."""
    check = sub.add_parser("check", help="is it safe to move one model from one environment to another?",
                           description="Build (or reuse) two environments, save and load your model both ways, "
                                       "and say whether your route survives, and which route works if not.")
    check.add_argument("--from", dest="source", required=True, metavar="SPEC",
                       help="the environment you are on: tf==2.15.1, tensorflow==2.16.2,keras==3.3.3, 2.16.2+tf-keras")
    check.add_argument("--to", dest="target", required=True, metavar="SPEC", help="the environment to move to")
    check.add_argument("--python", default=DEFAULT_PYTHON, help=f"Python of both (default {DEFAULT_PYTHON})")
    check.add_argument("--model", required=True, metavar="PATH_OR_MODULE:FN",
                       help="a saved model (.h5, .keras, SavedModel dir, weights) or a factory MODULE:FUNCTION "
                            "(or path/to/file.py:FUNCTION) that builds it")
    check.add_argument("--inputs", metavar="FILE_OR_SHAPE",
                       help="a .npy/.npz file, or SHAPE[:DTYPE] like 8x64x64x1:float32 for seeded random inputs")
    check.add_argument("--custom-objects", metavar="MODULE", help="MODULE[:DICT] or file.py[:DICT] with custom layers")
    check.add_argument("--factory", metavar="MODULE:FN", help="with a saved model: the code that rebuilds it "
                                                              "(adds the rebuild + load_weights route)")
    check.add_argument("--reference", metavar="FILE", help="with a saved model: its known-good predictions (.npy); "
                                                           "default: what the --from environment predicts")
    check.add_argument("--format", help="the format you save in (default: the saved model's, else keras)")
    check.add_argument("--out", type=Path, help="run directory (default runs/check-<model>-<UTC time>)")
    check.add_argument("--jobs", help="environments worked on in parallel (default: from cores and memory)")
    check.add_argument("--base-image", default=os.environ.get("HARNESS_BASE_IMAGE"),
                       help="base image template, e.g. 'harness-base:{python}' (env HARNESS_BASE_IMAGE)")
    check.add_argument("--cell-timeout", help="seconds one load may take (default 300)")
    check.add_argument("-q", "--quiet", action="store_true", help="no progress lines")


def check_matrix(args: argparse.Namespace) -> tuple[Matrix, dict[str, Any]]:
    """The two-environment matrix of a check, validated like a matrix file; and its YAML-ready data."""
    import yaml

    from harness.checkspec import add_routes, parse_spec, user_model_entry
    from harness.matrix import parse_matrix

    entry = user_model_entry(args.model, custom_objects=args.custom_objects, factory=args.factory,
                             inputs=args.inputs, reference=args.reference)
    add_routes(entry, args.format)
    source, target = parse_spec(args.source, "--from"), parse_spec(args.target, "--to")
    data = {"name": f"check-{entry['name']}", "environments": [source.entry(args.python), target.entry(args.python)],
            "models": [entry]}
    text = yaml.safe_dump(data, sort_keys=False)
    try:
        matrix = parse_matrix(data, path="check.yaml", sha256=hashlib.sha256(text.encode()).hexdigest(),
                              base_image=args.base_image)
    except MatrixError as exc:
        raise UsageError(_flags(exc.problems[0]) + (f" (and {len(exc.problems) - 1} more)"
                                                    if len(exc.problems) > 1 else "")) from None
    if matrix.environments[0].id == matrix.environments[1].id:
        raise UsageError(f"--from and --to are the same environment: {matrix.environments[0].id}")
    return matrix, data


_FLAGS = (("environments[0]", "--from"), ("environments[1]", "--to"), ("models[0].artifact", "--model"),
          ("models[0].factory", "--model"), ("models[0].custom_objects", "--custom-objects"),
          ("models[0].inputs", "--inputs"), ("models[0].reference", "--reference"), ("models[0]", "--model"))


def _flags(problem: str) -> str:
    """A matrix problem in terms of the command line."""
    for key, flag in _FLAGS:
        problem = problem.replace(key, flag)
    return problem


def cmd_check(args: argparse.Namespace) -> int:
    """Run the two-environment matrix like `run`, then print the verdict; 0 when the current route survives."""
    import yaml

    from harness.checkspec import route_of
    from harness.cli import build_parser, cmd_run
    from harness.matrix.user_models import artifact_source
    from harness.rundir import default_out

    matrix, data = check_matrix(args)
    model = matrix.user_models[0]
    route = route_of(model.artifact_format, args.format, model.factory is not None)
    out = args.out or default_out(matrix.name)
    passed = [f"--{k.replace('_', '-')}={v}" for k, v in vars(args).items()
              if k in ("jobs", "base_image", "cell_timeout") and v is not None]
    run_args = build_parser().parse_args(["run", "check.yaml", "--out", str(out), *passed]
                                         + (["--quiet"] if args.quiet else []))
    run_args.built_matrix = matrix
    code = cmd_run(run_args)
    report_path = Path(out) / "report.json"
    if code not in (0, 1) or not report_path.is_file():
        return code
    report = json.loads(report_path.read_text(encoding="utf-8"))
    home, target = matrix.environments[0].id, matrix.environments[1].id
    source = artifact_source(model.name) if model.kind == "artifact" else home
    verdict = decide(report["cells"], model=model.name, source=source, target=target, home=home, route=route)
    (Path(out) / "check.yaml").write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    cells = asdict(verdict)
    (Path(out) / "check.json").write_text(json.dumps({
        "verdict": verdict.status, "exit_code": verdict.exit_code, "source": source, "target": target,
        "route": list(route), "current": cells["route"], "at_home": cells["at_home"], "works": cells["works"],
        "breaks": cells["breaks"]}, indent=2, sort_keys=True) + "\n")
    print(render(verdict, report, source=source, home=home, target=target, route=route, run_dir=Path(out)), end="")
    return verdict.exit_code
