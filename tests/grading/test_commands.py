"""The operators' commands, through the real sandbox and hidden checks: `grade_file` grades a file as a submission
and prints the result (JSON on the last line); `grading_bench` prints every figure of the benchmark side by side."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import CommandError, call_command

from grading.models import CodeSubmission
from tests.grading.conftest import solution, starter, submission_file

pytestmark = pytest.mark.sandbox
SLUG = "resnet-block-stride"


def run(*args: str) -> tuple[str, dict]:
    """The command's whole output and the JSON object on its last line."""
    out = io.StringIO()
    call_command(*args, stdout=out)
    text = out.getvalue()
    return text, json.loads(text.strip().splitlines()[-1])


def test_grade_file_gives_a_correct_file_full_marks(db, tmp_path):
    answer = tmp_path / "block.py"
    answer.write_text(solution(SLUG))

    text, result = run("grade_file", SLUG, str(answer), "--json")

    assert result["status"] == "graded" and result["passed"] is True
    assert result["score"] == result["max_score"] == 2.0
    assert result["checks"] and all(c["passed"] and c["feedback"] == "" for c in result["checks"])
    assert all({"name", "passed", "feedback"} <= set(c) for c in result["checks"])
    assert "[PASS]" in text and "[FAIL]" not in text
    assert CodeSubmission.objects.get(pk=result["submission"]).status == CodeSubmission.Status.GRADED


@pytest.mark.parametrize("slug", ["resnet-block-projection", "skip-gradient-experiment"])
def test_grade_file_gives_the_unchanged_starter_code_zero(db, tmp_path, slug):
    answer = tmp_path / "starter.py"
    answer.write_text(starter(slug))

    text, result = run("grade_file", slug, str(answer), "--json")

    assert result["score"] == 0.0 and result["max_score"] == 2.0 and result["passed"] is False


def test_grade_file_names_the_checks_a_typical_mistake_loses(db, tmp_path):
    answer = tmp_path / "no_stride.py"
    answer.write_text(submission_file("stride_shortcut_without_stride.py"))

    text, result = run("grade_file", SLUG, str(answer), "--json")

    assert result["status"] == "graded" and result["passed"] is False
    assert 0 < result["score"] < result["max_score"]
    failed = [c for c in result["checks"] if not c["passed"]]
    assert any("stride is 2" in c["name"] for c in failed)
    assert all(c["feedback"] for c in failed)
    assert "[FAIL]" in text


def test_grade_file_refuses_a_missing_or_empty_file_and_an_unknown_challenge(db, tmp_path):
    answer = tmp_path / "block.py"
    answer.write_text(solution(SLUG))
    empty = tmp_path / "empty.py"
    empty.write_text("  \n")

    with pytest.raises(CommandError, match="no such file"):
        call_command("grade_file", SLUG, str(tmp_path / "missing.py"))
    with pytest.raises(CommandError, match="empty"):
        call_command("grade_file", SLUG, str(empty))
    with pytest.raises(CommandError, match="no-such-challenge"):
        call_command("grade_file", "no-such-challenge", str(answer))
    assert not CodeSubmission.objects.exists()


def test_grading_bench_prints_every_figure_side_by_side(transactional_db):
    from quizzes.content import current_set

    current_set()  # the challenge set is in the (flushed) database, as after migrate

    text, figures = run("grading_bench", "--json", "--runs", "2", "--burst", "2", "--concurrency", "2")

    for key in ("p50_s", "p95_s", "throughput_per_s", "inprocess_check_s", "naive_process_s",
                "pool_throughput_per_s", "refill_throughput_per_s"):  # a burst of 2 from a pool of 1: both
        assert figures[key] > 0, key
    assert figures["p50_s"] <= figures["p95_s"]
    assert figures["p50_over_inprocess"] == pytest.approx(figures["p50_s"] / figures["inprocess_check_s"])
    assert figures["device"] in {"cpu", "cuda"} and figures["device_name"]
    assert (figures["burst"], figures["concurrency"]) == (2, 2)
    assert "p50 / in-process" in text and "gradings/s" in text
    assert not CodeSubmission.objects.exists()  # the benchmark's submissions are removed
