"""The hidden checks, through the real sandbox: correct answers get full marks, typical mistakes lose the right
checks with feedback that helps without revealing the hidden inputs."""

from __future__ import annotations

import re

import pytest

from grading.models import CodeSubmission
from grading.sandbox import SandboxConfig
from tests.grading.conftest import check, solution, starter, submission_file

pytestmark = pytest.mark.sandbox

SLUGS = ["resnet-block-projection", "resnet-block-stride", "bottleneck-block", "skip-gradient-experiment"]


@pytest.mark.parametrize("slug", SLUGS)
def test_the_reference_solution_scores_full_marks(grade, slug):
    result = grade(slug, solution(slug))

    assert result.status == CodeSubmission.Status.GRADED
    assert result.score == result.max_score == 2.0
    assert all(c["passed"] and c["feedback"] == "" for c in result.checks), result.checks
    assert result.started_at and result.finished_at and result.queued_at <= result.started_at <= result.finished_at
    assert result.device == SandboxConfig.from_settings().device  # "cuda" on a GPU machine, else "cpu"
    if slug == "skip-gradient-experiment":  # the feedback page draws the two loss curves
        chart = result.artifacts["loss_curves"]
        assert chart["series"]["residual"][-1] < chart["series"]["plain"][-1]
        assert chart["grad_norms"]["residual"] > chart["grad_norms"]["plain"] > 0


@pytest.mark.parametrize("slug", SLUGS)
def test_the_unchanged_starter_code_scores_zero_and_what_it_passes_earns_nothing(grade, slug):
    result = grade(slug, starter(slug))

    assert result.status in (CodeSubmission.Status.GRADED, CodeSubmission.Status.FAILED)
    assert result.score == 0.0 and result.max_score == 2.0
    for c in result.checks:
        assert c["points"] == 0.0, c
        if c["passed"]:  # a check the starter passes is worth nothing to anyone
            assert c["max_points"] == 0.0 and c["starter_points"] > 0, c
    # What is left to earn is worth the whole challenge: a full solution still scores 2 of 2 (above).
    assert sum(c["max_points"] for c in result.checks) > 0


def test_identity_skip_with_mismatched_channels_loses_the_projection_checks(grade):
    """The Debug question's bug, which is also the starter's: what the starter already passes earns nothing."""
    result = grade("resnet-block-projection", submission_file("projection_identity_mismatch.py"))

    assert result.status == CodeSubmission.Status.GRADED
    assert result.score == 0.0  # it passed 3 of 6 checks and scored 1.07 of 2 before the starter earned nothing
    identity = check(result, "identity skip path")
    assert identity["passed"] and identity["max_points"] == 0.0  # right, but the starter already had it
    assert check(result, "same seed")["passed"]
    projection = check(result, "1x1 projection")
    assert not projection["passed"] and projection["max_points"] == 2.0
    assert "1x1 convolution" in projection["feedback"]
    shapes = check(result, "output shape")
    # The starter's partial credit on shapes (the equal-channel cases) is not worth anything: the rest still is.
    assert not shapes["passed"] and shapes["points"] == 0.0 and 0 < shapes["max_points"] < 2.0
    assert shapes["starter_points"] > 0
    assert "different channel counts" in shapes["feedback"]
    assert not check(result, "parameter count")["passed"]
    assert "the starter code already passes" in result.feedback


def test_missing_stride_on_the_shortcut_loses_the_downsampling_checks(grade):
    result = grade("resnet-block-stride", submission_file("stride_shortcut_without_stride.py"))

    assert result.status == CodeSubmission.Status.GRADED
    stride = check(result, "stride is 2")
    assert not stride["passed"]
    assert "stride 2" in stride["feedback"] and "shortcut" in stride["feedback"]
    assert not check(result, "output shape")["passed"]
    # What it does right still counts.
    for name in ("identity shortcut", "channel count changes", "same seed", "gradient flow"):
        assert check(result, name)["passed"], name
    assert 0 < result.score < result.max_score
    # The hidden channel counts and image sizes never appear in the feedback; "1x1", "3x3", "stride 2" may.
    text = " ".join(c["feedback"] for c in result.checks)
    assert not re.search(r"\b(8|9|16|32|64|128)\b", text), text


def test_wrong_expansion_loses_the_expansion_and_shape_checks(grade):
    result = grade("bottleneck-block", submission_file("bottleneck_wrong_expansion.py"))

    assert result.status == CodeSubmission.Status.GRADED
    assert not check(result, "expansion = 4")["passed"]
    shapes = check(result, "output shape")
    assert not shapes["passed"]
    assert "4 * mid_channels" in shapes["feedback"]
    assert not check(result, "parameter count")["passed"]
    assert check(result, "same seed")["passed"]


def test_an_experiment_without_a_plain_network_loses_the_comparisons_and_shows_its_curves(grade):
    result = grade("skip-gradient-experiment", submission_file("experiment_skip_in_both.py"))

    assert result.status == CodeSubmission.Status.GRADED
    assert check(result, "four results")["passed"]
    assert check(result, "one finite loss per step")["passed"]
    assert check(result, "seeded")["passed"]
    assert not check(result, "lower loss")["passed"]
    assert not check(result, "larger first-layer gradient")["passed"]
    curves = result.artifacts["loss_curves"]["series"]
    assert len(curves["plain"]) == len(curves["residual"]) == 30
    assert all(isinstance(v, float) for v in curves["plain"] + curves["residual"])
