"""Routes, homes and path verdicts; causes and the clean-up of messages. Pure functions, no run directory."""

from __future__ import annotations

from typing import Any

import pytest

from harness.report import causes, routes, summary


def _cell(source: str, target: str, status: str, fmt: str = "keras", loader: str = "load_model", **extra: Any
          ) -> dict[str, Any]:
    return {"source": source, "target": target, "model": "m", "format": fmt, "loader": loader, "status": status,
            "expected": None, **extra}


@pytest.mark.parametrize(("home", "there", "expected"), [
    ("pass", "pass", "portable"),
    ("pass", "error", "breaks"),
    ("pass", "drift", "breaks"),
    ("pass", "crash", "breaks"),
    ("error", "error", "never_works"),
    ("drift", "pass", "never_works"),  # it works there, but not where it comes from
    ("pass", "unsupported", "unsupported"),
    ("unsupported", "error", "unsupported"),
    ("pass", "skipped", "skipped"),
    ("skipped", "pass", "skipped"),
])
def test_a_route_is_judged_against_its_home(home: str, there: str, expected: str) -> None:
    assert routes.route_status(_cell("a", "b", there), _cell("a", "a", home), hazard=False) == expected


def test_a_route_the_source_cannot_save_never_works_and_hazards_are_hazards() -> None:
    unsaved = _cell("a", "b", "skipped", stage="save")
    assert routes.route_status(unsaved, _cell("a", "a", "skipped", stage="save"), hazard=False) == "never_works"
    assert routes.route_status(_cell("a", "b", "drift"), _cell("a", "a", "drift"), hazard=True) == "hazard"


def test_an_artifacts_home_is_its_reference_environment() -> None:
    cells = [_cell("user-old", "a", "pass"), _cell("user-old", "b", "error")]
    routes.annotate(cells, {"m": {"user-old": "a"}}, set())
    assert [c["route_status"] for c in cells] == ["portable", "breaks"]


@pytest.mark.parametrize(("counts", "ok", "expected"), [
    ({"portable": 3}, True, "safe"),
    ({"portable": 2, "breaks": 1}, True, "partial"),
    ({"breaks": 2, "never_works": 4}, True, "broken"),
    ({"never_works": 4}, True, "untested"),  # nothing works at home: nothing to carry over
    ({"portable": 3}, False, "untested"),  # an environment did not build
])
def test_path_verdicts(counts: dict[str, int], ok: bool, expected: str) -> None:
    assert routes.verdict(counts, ok) == expected


def test_paths_count_routes_rank_causes_and_list_what_works_best_first() -> None:
    cells = [
        _cell("a", "a", "pass", "h5"), _cell("a", "a", "pass", "keras"), _cell("a", "a", "pass", "json",
                                                                               "model_from_json"),
        _cell("a", "b", "pass", "h5", max_abs_diff=1e-7, bit_exact=False),
        _cell("a", "b", "pass", "json", "model_from_json", max_abs_diff=0.0, bit_exact=True),
        _cell("a", "b", "error", "keras", cause="keras2-file-in-keras3"),
    ]
    routes.annotate(cells, {}, set())
    home, path = routes.paths(cells, ["a"], ["a", "b"], {})
    assert (home["verdict"], home["routes_portable"]) == ("safe", 3)
    assert (path["verdict"], path["routes_portable"], path["routes_breaks"]) == ("partial", 2, 1)
    assert path["causes"] == ["keras2-file-in-keras3"] and path["breaks_unexpected"] == 1
    assert [(w["format"], w["loader"]) for w in path["works"]] == [("json", "model_from_json"), ("h5", "load_model")]
    assert summary.broken_of(path) == "1/3"


def test_causes_cluster_failures_and_put_unexpected_breaks_first() -> None:
    cells = [
        _cell("a", "b", "error", route_status="breaks", cause="x", error={"hint": "fix x"}),
        _cell("a", "c", "error", route_status="breaks", cause="x", error={"hint": "fix x"}, expected=True),
        _cell("a", "a", "error", route_status="never_works", cause="y", error={"hint": "fix y"}),
        _cell("b", "b", "drift", route_status="hazard", cause="label-order"),  # hazards have their own section
        _cell("b", "c", "pass", route_status="portable"),
    ]
    found = causes.causes(cells)
    assert [c["name"] for c in found] == ["x", "y"]
    x = found[0]
    assert (x["cells"], x["breaks"], x["breaks_unexpected"], x["expected"], x["fix"]) == (2, 2, 1, 1, "fix x")
    assert x["pairs"] == [["a", "b"], ["a", "c"]] and x["example"] == "a -> b m/keras/load_model"


def test_messages_are_cleaned_shortened_at_a_word_and_normalised_for_causes() -> None:
    assert causes.clean("\x1b[31mfailed\x1b[0m at /harness/artifacts/env/m/h5/model.h5", target="t") == \
        "failed at artifacts/env/m/h5/model.h5"
    assert causes.clean("see /harness/outputs/src/m.npy", target="t") == "see outputs/t/src/m.npy"
    text = "word " * 100
    short = causes.shorten(text, 40)
    assert len(short) <= 40 and short.endswith("…") and short[-2] == "d"  # cut after a whole word
    a = causes.normalised("ValueError", "Layer 'dense_1' at 0x7f3a2c1b9d90 expects 3 inputs")
    b = causes.normalised("builtins.ValueError", "Layer 'dense_2' at 0x7f00000aaaaa expects 4 inputs")
    assert a == b == "ValueError: Layer '…' at 0x… expects N inputs"


def test_a_traceback_is_kept_as_its_last_frames_once() -> None:
    frames = "".join(f'  File "/opt/venv/k.py", line {i}, in f{i}\n    call_{i}()\n    ^^^^^^\n' for i in range(12))
    table = causes.Tracebacks()
    first = table.add("Traceback (most recent call last):\n" + frames + "ValueError: one message")
    second = table.add("Traceback (most recent call last):\n" + frames + "ValueError: another message")
    assert first == second and len(table.table) == 1  # the same frames: stored once
    kept = table.table[str(first)]
    assert kept.startswith("…\n") and "f11" in kept and "f3" not in kept and "^^^" not in kept
    assert "message" not in kept  # the cell holds the message
