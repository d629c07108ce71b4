"""What `check` and `bisect` print: their answers on one screen, rendered from report.json alone.

The check's screen reads report.json's `check` (the answer computed while the report was built),
so `harness check`, `harness report CHECK_DIR` and the report files say the same thing.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from harness.advisor import words
from harness.advisor.answer import SAFE, SAFE_ELSEWHERE, UNSAFE, UNTESTED, route_from_dict
from harness.report.causes import shorten
from harness.report.statuses import WORKING

SHORT = {SAFE: "SAFE", SAFE_ELSEWHERE: "NOT SAFE, another route works", UNSAFE: "UNSAFE", UNTESTED: "UNTESTED"}
MAX_ROUTES = 6  # routes listed per section: the whole answer fits one screen
PER_KIND = 2  # working routes listed per kind of route
KIND_WORDS = {"as_is": "as-it-is", "migrated": "migrated", "tf_keras": "tf-keras", "migrated_tf_keras": "migrated "
              "+ tf-keras", "adapted": "adapted"}
MAX_EDITS = 6  # edits listed under an adapted route

Json = Mapping[str, Any]


def _kind(route: Json) -> str:
    """as_is, migrated, tf_keras or migrated_tf_keras: where a route's file comes from and what loads it."""
    return str(route["kind"])


def _env_words(env: Json) -> str:
    if env.get("image") is None and env.get("spec", {}).get("artifact"):
        keras = f"Keras {env['keras']}" if env.get("keras") else "Keras version unknown"
        return f"{Path(env['spec']['artifact']).name} (saved elsewhere; {keras})"
    return (f"Python {env.get('python')}, TensorFlow {env.get('tensorflow')}, Keras {env.get('keras')}"
            + (f" ({env['keras_package']})" if env.get("keras_package") == "tf-keras" else ""))


def check_screen(report: Json, run_dir: Path) -> str:
    """The check's answer: one target's screen, or a table of several."""
    check = report["check"]
    if len(check["targets"]) == 1:
        return _target_screen(report, check, check["targets"][0], run_dir)
    lines = [*targets_table(check["targets"]), ""]
    for target in check["targets"]:
        if target["verdict"] == UNTESTED and target.get("home_cause"):
            lines += _home_cause(target["home_cause"], check["home"], indent="")
            break
    lines.append(f"details: {run_dir / 'check.json'}, report: {run_dir / 'report.html'}")
    return "\n".join(lines) + "\n"


def targets_table(targets: Sequence[Json]) -> list[str]:
    """One row per target: its answer, the route to take (yours when it survives, else the best that works), and
    that route's difference."""
    rows = [("target", "verdict", "route to take", "difference")]
    for t in targets:
        use = t.get("use")
        taken = (use["short"] + (" (yours)" if t["verdict"] == SAFE else "")) if use else "none"
        rows.append((t["target"], SHORT[t["verdict"]], taken,
                     words.difference(use.get("bit_exact"), use.get("max_abs_diff")) if use else "-"))
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    return [f"{r[0]:<{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]:<{widths[2]}}  {r[3]}".rstrip() for r in rows]


def _target_screen(report: Json, check: Json, target: Json, run_dir: Path) -> str:
    envs = {e["id"]: e for e in report["environments"]}
    entry = next((m for m in report["models"] if m["name"] == check["model"]), report["models"][0])
    source, home, there = check["source"], check["home"], target["target"]
    lines = [f"model  {entry['name']}: {entry['description']}"]
    if source != home:
        lines.append(f"saved  {source}: {_env_words(envs[source])}")
    lines += [f"from   {home}: {_env_words(envs[home])}", f"to     {there}: {_env_words(envs[there])}"]
    if target.get("tf_keras") and target["tf_keras"] in envs:
        lines.append(f"beside {target['tf_keras']}: {_env_words(envs[target['tf_keras']])}")
    lines += [f"route  {words.route_words(*target['route'])}", ""]
    lines += _headline(target, home, report)
    lines += _breaks(target) + _works(target, report["tolerance"], home=home) + _not_adapted(target)
    lines += ["", f"report: {run_dir / 'report.html'}  (run directory {run_dir})"]
    return "\n".join(lines) + "\n"


def _home_cause(cause: Json, home: str, indent: str = "  ") -> list[str]:
    """Why the route fails at home, and what fixes it: the flag when a flag does."""
    detail = shorten(str(cause.get("detail") or cause.get("status")), 160)
    lines = [f"{indent}cause: {cause.get('name') or 'unknown'}: {detail}"]
    if cause.get("flag"):
        lines.append(f"{indent}fix:   run check again with {cause['flag']}")
    if cause.get("fix"):
        lines.append(f"{indent}{'why:   ' if cause.get('flag') else 'fix:   '}{cause['fix']}")
    return lines


def _headline(target: Json, home: str, report: Json) -> list[str]:
    status = target["verdict"]
    headline = {SAFE: "SAFE: your route works in the target",
                SAFE_ELSEWHERE: "NOT SAFE by your route, but another route works",
                UNSAFE: "UNSAFE: no route that works at home survives",
                UNTESTED: f"UNTESTED: your model does not load with the same predictions in {home} itself"}[status]
    lines = [f"verdict: {headline} (path {target['path_verdict']}; {target['tried']} routes tried)"]
    asked, current = tuple(target["asked"]), tuple(target["route"])
    cause = target.get("home_cause")
    if status == UNTESTED and cause:
        lines += _home_cause(cause, home)
    elif current != asked:
        at_home = target.get("at_home")
        lines.append(f"  note: {words.route_words(*asked)} does not work in {home} either"
                     + (f" ({at_home['status']}: {cause['name']})" if at_home and cause and cause.get("name") else
                        f" ({at_home['status']})" if at_home else "")
                     + f"; {words.route_words(*current)} does, so it is taken as your route")
    if target["never_works"] and status != UNTESTED:
        lines.append(f"  note: {len(target['never_works'])} route(s) fail in {home} too; they are not the upgrade's "
                     "doing")
    lines += [f"  note: {e['id']} has no image ({e.get('status')}): {e.get('error')}" for e in report["environments"]
              if e.get("status", "ok") != "ok"]
    return lines


def _breaks(target: Json) -> list[str]:
    breaks = target["breaks"]
    if not breaks:
        return []
    lines = ["", f"what breaks in {target['target']}:"]
    yours = target.get("current")
    ordered = sorted(breaks, key=lambda r: (yours is None or r != yours, r["format"], r["loader"]))
    seen: set[str] = set()
    for route in ordered[:MAX_ROUTES]:
        detail = re.sub(r"\s+", " ", route.get("detail") or "")
        lines.append(f"  x {route['words']}: {route['status']}: {detail[:110]}{'...' if len(detail) > 110 else ''}")
        if route.get("hint") and route["hint"] not in seen:
            lines.append(f"      hint: {route['hint']}")
            seen.add(route["hint"])
    if len(ordered) > MAX_ROUTES:
        lines.append(f"  ... and {len(ordered) - MAX_ROUTES} more in the report")
    return lines


def _kind_heading(kind: str, target: Json, home: str) -> str:
    return {
        "as_is": f"as it is, in {target['target']}:",
        "migrated": f"migrated: loaded in {home} and saved there again, then loaded in {target['target']}:",
        "tf_keras": f"with tf-keras in the same TensorFlow ({target['tf_keras']}: pip install tf-keras, "
                    "TF_USE_LEGACY_KERAS=1):",
        "migrated_tf_keras": f"migrated, then loaded with tf-keras ({target['tf_keras']}):",
        "adapted": f"adapted: a copy edited for {target['target']}'s Keras (no model loaded with another Keras), then "
                   "loaded there:",
    }[kind]


def _nothing_works(target: Json) -> list[str]:
    """When no route works: the causes that explain it (and their fixes); retraining only when nothing does."""
    if target["verdict"] == UNTESTED:
        return []
    known = {r["cause"]: r.get("hint") for r in target["breaks"] if r.get("cause")}
    if known:
        lines = ["", "no route that works at home survives; what breaks them:"]
        lines += [f"  {name}: {hint}" if hint else f"  {name}" for name, hint in known.items()]
        return lines
    return ["", "no route works and no known cause explains it: rebuild the model in the new version and retrain, "
                "or stay on the old one"]


def _works(target: Json, tolerance: Json, *, home: str) -> list[str]:
    works = target["works"]
    if not works:
        return _nothing_works(target)
    safe = target["verdict"] == SAFE
    lines = ["", "routes that work (each run and compared with the reference):"]
    kinds = list(dict.fromkeys(_kind(r) for r in works))
    for kind in kinds:
        routes = [r for r in works if _kind(r) == kind]
        if safe and kind != _kind(works[0]):  # your route works: the other kinds are only counted
            lines.append(f"  and {len(routes)} {KIND_WORDS[kind]} route(s): see check.json")
            continue
        lines.append(f"  {_kind_heading(kind, target, home)}")
        for r in routes[:PER_KIND]:
            lines.append(f"    ok {r['step']}: {words.figures(route_from_dict(r), tolerance)}")
            lines += _edits(r.get("edits") or [], "      ")
        if len(routes) > PER_KIND:
            lines.append(f"    ... and {len(routes) - PER_KIND} more in check.json")
    use = target["use"]
    lines += ["", f"route to take: {'yours, ' if safe else ''}{use['words']} "
                  f"({words.figures(route_from_dict(use), tolerance)})"]
    return lines


def _edits(edits: Sequence[str], indent: str) -> list[str]:
    lines = [f"{indent}edited: {shorten(e, 150)}" for e in edits[:MAX_EDITS]]
    return lines + ([f"{indent}... and {len(edits) - MAX_EDITS} more edits in check.json"]
                    if len(edits) > MAX_EDITS else [])


def _not_adapted(target: Json) -> list[str]:
    """Adapted copies that were made and failed verification, and which adapter failed and why (never handed over)."""
    failed = [r for r in target.get("adapted") or [] if r.get("route_status") not in WORKING
              and (r.get("adapters") or r.get("status") != "unsupported")]
    if not failed:
        return []
    lines = ["", f"adapted copies that failed verification in {target['target']} (never handed over):"]
    for r in failed[:MAX_ROUTES]:
        lines.append(f"  x {r['step']}: {shorten(str(r.get('detail') or r['status']), 220)}")
    return lines


# ---------------------------------------------------------------------------- bisect


def _same_boundary(a: Json, b: Json) -> bool:
    return all(a[k] == b[k] for k in ("last_good", "first_bad", "cause", "history", "monotone", "note"))


def _boundary(entry: Json, result: Json) -> list[str]:
    lines = ["  " + words.boundary(entry, result["from"], result["to"])
             + (f": {entry['cause']}" if entry["first_bad"] is not None and entry["cause"] else "")]
    if entry["first_bad"] is None:
        return lines
    if entry["error"]:
        detail = " ".join(str(entry["error"]).split())
        lines.append(f"      {detail[:150]}{'...' if len(detail) > 150 else ''}")
    if entry["root"]:
        lines.append(f"      at the root: {entry['root']}")
    if entry["hint"]:
        lines.append(f"      hint: {entry['hint']}")
    return lines


def bisect_screen(result: Json, report: Json, *, name: str, out: Path) -> str:
    """The bisect's answer on one screen: the walk, what was probed, each route's boundary and history."""
    model = next(m for m in report["models"] if m["name"] == name)
    lines = [f"model   {name}: {model['description']}",
             f"axis    {result['package']} {result['from']} -> {result['to']}: {len(result['releases'])} releases "
             f"({', '.join(result['releases'])}), listed by {result['index']}",
             f"probed  {len(result['probed'])} environment(s): {', '.join(result['probed'])}"
             + (f" (at most {result['budget']} per route)" if result["budget"] else " (every release)")]
    if result["unbuilt"]:
        lines.append(f"        did not build: {', '.join(result['unbuilt'])}")
    if not result["home_works"]:
        return "\n".join([*lines, "", f"UNTESTED: no route loads {name} with the same predictions at "
                                       f"{result['from']} itself", "", f"report: {out / 'report.html'}"]) + "\n"
    shown: list[Json] = []
    for entry in result["routes"]:
        same = next((s for s in shown if _same_boundary(s, entry)), None)
        if same is not None:  # the same boundary, cause and history as a route above: one line
            lines.append(f"  also breaks there: {words.route_words(entry['format'], entry['loader'])}")
            continue
        shown.append(entry)
        lines += ["", ("your route  " if entry["yours"] else "also breaks ")
                  + words.route_words(entry["format"], entry["loader"])]
        lines += _boundary(entry, result)
        note = words.monotone_note(entry)
        if note:
            lines.append(("  " if not entry["monotone"] else "  note: ") + note)
        lines.append("  probed: " + words.history(entry))
    lines += ["", f"report: {out / 'report.html'}  ({result['seconds']:.0f} s)"]
    return "\n".join(lines) + "\n"
