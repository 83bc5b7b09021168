"""The ResNet set as content: complete seed questions, code challenges, schema errors, versions."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from django.core.management import call_command
from django.core.management.base import CommandError

from quizzes import content, services
from quizzes.content import ContentError, get_code_challenge, read_set_file
from quizzes.models import ChallengeSet
from tests.quizzes.factories import PlacementFactory, student_for

pytestmark = pytest.mark.django_db

SEED = [
    # slug, category, difficulty, time limit, answer, first option's text
    ("why-skip-connections", "Conceptual", "intermediate", 120, "A",
     "To allow gradients to flow directly and avoid vanishing gradient problems in very deep networks."),
    ("skip-block-output-shape", "Predict Output", "intermediate", 120, "D", "(32, 32, 32, 64)"),
    ("channel-mismatch-block", "Model Choice", "advanced", 120, "C",
     "Add zero padding channels to the input tensor to match output channels."),
    ("skip-loss-curves", "Metrics", "advanced", 120, "B",
     "The ResNet with skip connections shows slower loss decrease and higher final training loss."),
    ("debug-skip-connection", "Debug", "expert", 180, "A",
     "RuntimeError due to shape mismatch when adding tensors of different channel sizes."),
]
CODE = ["resnet-block-projection", "resnet-block-stride", "bottleneck-block", "skip-gradient-experiment"]


def test_a_freshly_migrated_database_holds_the_resnet_set():
    current = ChallengeSet.objects.get(slug="resnet", is_current=True)
    assert [c["slug"] for c in current.challenges] == [s[0] for s in SEED] + CODE
    assert current.badge_name == "ResNet Mastery Badge"


@pytest.mark.parametrize("slug,category,difficulty,limit,answer,first_option", SEED)
def test_the_five_seed_questions_are_complete(slug, category, difficulty, limit, answer, first_option):
    challenge = content.current_set().challenge(slug)
    assert (challenge["category"], challenge["difficulty"], challenge["time_limit_s"]) == (category, difficulty, limit)
    assert challenge["attempts"] == 2
    assert challenge["answer"] == answer
    assert [o["key"] for o in challenge["options"]] == ["A", "B", "C", "D"]
    assert challenge["options"][0]["text"] == first_option
    assert challenge["hint"] and challenge["explanation"] and challenge["prompt"]


def test_the_snippets_carry_their_language_and_framework():
    current = content.current_set()
    predict = current.challenge("skip-block-output-shape")["code"]
    debug = current.challenge("debug-skip-connection")["code"]
    assert (predict["language"], predict["framework"]) == ("python", "tensorflow")
    assert "tf.keras.layers.Add()([input_tensor, conv2])" in predict["source"]
    assert (debug["language"], debug["framework"]) == ("python", "pytorch")
    assert "out += x  # skip connection" in debug["source"]


@pytest.mark.parametrize("slug", CODE)
def test_code_challenges_come_with_statement_starter_and_example_checks(slug):
    spec = get_code_challenge(slug)
    assert spec.version == content.current_set().version
    assert spec.statement and spec.example_checks and spec.points > 0 and spec.timeout_s > 0
    starter = (content.CONTENT_ROOT / "resnet" / "code" / slug / "starter.py").read_text()
    assert spec.starter_code == starter
    compile(spec.starter_code, "starter.py", "exec")


def test_code_challenge_interfaces_are_named_in_the_statements():
    assert "class ResNetBlock(nn.Module)" in get_code_challenge("resnet-block-projection").statement
    assert "__init__(self, in_channels, out_channels, stride=1)" in get_code_challenge("resnet-block-stride").statement
    assert "__init__(self, in_channels, mid_channels, stride=1)" in get_code_challenge("bottleneck-block").statement
    assert "def run_experiment(depth: int, steps: int, seed: int) -> dict" in get_code_challenge(
        "skip-gradient-experiment"
    ).statement


def test_unknown_code_challenges_and_versions_are_not_found():
    with pytest.raises(content.ChallengeNotFound):
        get_code_challenge("why-skip-connections")  # a multiple-choice question
    with pytest.raises(content.ChallengeNotFound):
        get_code_challenge("resnet-block-projection", version="0000000000000000")


def test_modes_are_rule_bundles_with_the_required_three():
    modes = content.get_modes()
    assert {"practice", "timed", "exam"} <= set(modes)
    assert content.get_mode()["slug"] == "timed"
    assert modes["practice"]["timer"] == "none" and modes["practice"]["attempts"] is None
    assert modes["practice"]["graded"] is False and modes["practice"]["hints"] == "free"
    assert modes["timed"]["timer"] == "per_question" and modes["timed"]["badge"] is True
    assert modes["exam"]["timer"] == "whole_set" and modes["exam"]["attempts"] == 1
    assert modes["exam"]["hints"] == "off" and modes["exam"]["reveal_answers"] == "after_close"


# --- Schema errors ----------------------------------------------------------------------------------------------


@pytest.fixture
def content_copy(tmp_path: Path) -> Path:
    shutil.copytree(content.CONTENT_ROOT / "resnet", tmp_path / "resnet")
    return tmp_path


def _edit(root: Path, change) -> Path:
    path = root / "resnet" / "set.yaml"
    data = yaml.safe_load(path.read_text())
    change(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_a_schema_error_names_the_file_and_the_path(content_copy):
    path = _edit(content_copy, lambda d: d["challenges"][1].update(difficulty="impossible"))
    with pytest.raises(ContentError) as error:
        read_set_file(path)
    assert str(path) in str(error.value)
    assert "$.challenges[1].difficulty" in str(error.value)
    assert "'impossible' is not one of" in str(error.value)


def test_a_missing_field_and_an_unknown_field_are_reported(content_copy):
    def change(d):
        del d["challenges"][0]["hint"]
        d["challenges"][2]["colour"] = "red"

    path = _edit(content_copy, change)
    with pytest.raises(ContentError) as error:
        read_set_file(path)
    assert "'hint' is a required property" in str(error.value)
    assert "'colour' was unexpected" in str(error.value)


def test_an_answer_that_is_not_an_option_is_reported(content_copy):
    def change(d):
        d["challenges"][0]["options"] = d["challenges"][0]["options"][:3]
        d["challenges"][0]["answer"] = "D"

    path = _edit(content_copy, change)
    with pytest.raises(ContentError, match=r"\$\.challenges\[0\]\.answer: 'D' is not one of the option keys"):
        read_set_file(path)


def test_a_missing_starter_file_is_reported(content_copy):
    (content_copy / "resnet" / "code" / "bottleneck-block" / "starter.py").unlink()
    with pytest.raises(ContentError, match="starter.py does not exist"):
        read_set_file(content_copy / "resnet" / "set.yaml")


def test_invalid_yaml_is_reported_with_the_file(content_copy):
    path = content_copy / "resnet" / "set.yaml"
    path.write_text("slug: [unclosed\n")
    with pytest.raises(ContentError, match="is not valid YAML"):
        read_set_file(path)


def test_the_management_command_refuses_invalid_content_and_stores_nothing(content_copy):
    _edit(content_copy, lambda d: d["challenges"][0].update(time_limit_s="two minutes"))
    before = ChallengeSet.objects.count()
    with pytest.raises(CommandError, match=r"time_limit_s"):
        call_command("load_challenge_sets", root=str(content_copy))
    assert ChallengeSet.objects.count() == before


# --- Versions ---------------------------------------------------------------------------------------------------


def test_loading_unchanged_content_keeps_the_version(capsys):
    before = content.current_set().version
    call_command("load_challenge_sets")
    assert "unchanged " + before in capsys.readouterr().out
    assert ChallengeSet.objects.filter(slug="resnet").count() == 1


def test_editing_a_set_creates_a_new_version_and_never_changes_attempts_already_made(content_copy):
    placement = PlacementFactory(mode="timed")
    user = student_for(placement.resource_link)
    attempt = services.start_attempt(placement, user)
    old = placement.challenge_set
    services.show_question(attempt, "why-skip-connections")

    def change(d):
        d["challenges"][0]["answer"] = "B"
        d["challenges"][0]["title"] = "Edited title"

    _edit(content_copy, change)
    (content_copy / "resnet" / "code" / "resnet-block-stride" / "checks.py").write_text("# new checks\n")
    [(new, created)] = content.load_challenge_sets(content_copy)

    assert created and new.version != old.version and new.is_current
    old.refresh_from_db()
    assert not old.is_current and old.challenge("why-skip-connections")["answer"] == "A"
    assert get_code_challenge("resnet-block-stride").checks_source == "# new checks\n"
    assert get_code_challenge("resnet-block-stride", version=old.version).checks_source != "# new checks\n"
    # The placement is pinned: the old key still grades the attempt in progress.
    assert services.submit_answer(attempt, "why-skip-connections", "A").correct
    # New placements get the new version.
    assert PlacementFactory().challenge_set == new


def test_the_content_version_is_a_hash_of_the_content():
    data = read_set_file(content.CONTENT_ROOT / "resnet" / "set.yaml")
    assert content.content_version(data) == content.current_set().version
    data["title"] += "!"
    assert content.content_version(data) != content.current_set().version


def test_shared_check_helpers_are_inlined_so_each_stored_checks_file_stands_alone():
    spec = get_code_challenge("resnet-block-projection")
    assert content.INCLUDE_MARKER not in spec.checks_source
    assert "def _summary(t):" in spec.checks_source  # from code/_shared/probe_helpers.py, above the judge marker
    probe_half, judge_half = spec.checks_source.split("\n# === judge:")
    assert "def _summary(t):" in probe_half and "def judge(measurements, reference):" in judge_half


def test_editing_a_shared_helper_makes_a_new_version(content_copy):
    old = content.current_set()
    helpers = content_copy / "resnet" / "code" / "_shared" / "probe_helpers.py"
    helpers.write_text(helpers.read_text() + "\nEDITED = True\n")
    [(new, created)] = content.load_challenge_sets(content_copy)
    assert created and new.version != old.version
    assert "EDITED = True" in get_code_challenge("bottleneck-block").checks_source
    assert "EDITED = True" not in get_code_challenge("bottleneck-block", version=old.version).checks_source


def test_an_include_of_a_missing_helper_is_reported(content_copy):
    checks = content_copy / "resnet" / "code" / "bottleneck-block" / "checks.py"
    checks.write_text("# === include: nowhere.py\n" + checks.read_text())
    with pytest.raises(ContentError, match=r"cannot include 'nowhere.py'"):
        read_set_file(content_copy / "resnet" / "set.yaml")
