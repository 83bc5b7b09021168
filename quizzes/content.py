"""Challenge-set content: files in the repository, validated, versioned by content hash, stored in the database.

Layout (under quizzes/content/):
    modes.yaml                      the modes (bundles of rules), validated by schemas/modes.schema.json
    <set>/set.yaml                  one challenge set, validated by schemas/set.schema.json
    <set>/code/<slug>/starter.py    starter code shown to students
    <set>/code/<slug>/checks.py     hidden checks run by the grading workers (never shown)
    <set>/code/<slug>/solution.py   a reference solution the checks must accept (never shown)
    <set>/code/_shared/*.py         helpers a checks.py pulls in with a line `# === include: NAME.py`

Includes are expanded when the set is loaded, so each stored checks.py is self-contained and its version hash covers
the helpers it uses: editing a helper makes a new version and never changes grading of attempts already made.

`load_challenge_sets()` stores a new `ChallengeSet` row whenever a set's content (including its code files) changes;
rows already stored are never modified, so placements pinned to an older version keep working unchanged.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from django.db import transaction
from jsonschema import Draft202012Validator

from grading.challenges import ChallengeNotFound  # what get_code_challenge raises: grading catches it

logger = logging.getLogger(__name__)

CONTENT_ROOT = Path(__file__).resolve().parent / "content"
SCHEMA_DIR = CONTENT_ROOT / "schemas"
MODES_FILE = CONTENT_ROOT / "modes.yaml"
DEFAULT_SET_SLUG = "resnet"
# The code files of a code challenge, as stored in the versioned content.
CODE_FILES = {"starter_code": "starter.py", "checks_source": "checks.py", "solution_source": "solution.py"}
INCLUDE_MARKER = "# === include:"
# How content cites an option of its own question (by key): each student reads the letter of their display order.
OPTION_REF = re.compile(r"\{option:([A-Za-z0-9]{1,8})\}")
SHARED_CODE_DIR = "_shared"


class ContentError(ValueError):
    """A content file is missing, unreadable or does not follow its schema. The message names the file and path."""


@dataclass(frozen=True)
class CodeChallengeSpec:
    """Everything the grading side needs about one code challenge of one content version."""

    slug: str
    title: str
    points: float
    statement: str
    starter_code: str
    example_checks: list[str]
    checks_source: str
    solution_source: str
    timeout_s: float
    version: str


# --- Reading and validating files ------------------------------------------------------------------------------


@lru_cache(maxsize=4)
def _validator(schema_name: str) -> Draft202012Validator:
    schema = json.loads((SCHEMA_DIR / schema_name).read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def _json_path(parts: Any) -> str:
    path = "$"
    for part in parts:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


def _read_yaml(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ContentError(f"{path}: cannot be read ({exc.strerror or exc})") from exc
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ContentError(f"{path}: is not valid YAML: {exc}") from exc


def _validate(data: Any, schema_name: str, path: Path) -> None:
    errors = sorted(_validator(schema_name).iter_errors(data), key=lambda e: list(map(str, e.absolute_path)))
    if errors:
        lines = [f"{path}: {_json_path(e.absolute_path)}: {e.message}" for e in errors[:20]]
        raise ContentError("content does not follow its schema:\n" + "\n".join(lines))


def read_set_file(path: Path) -> dict[str, Any]:
    """Parse and validate one set.yaml; return its content with the code files' text embedded.

    Raises ContentError naming the file and the JSON path of each problem. Missing checks.py/solution.py are
    stored as empty strings (the grading side reports a challenge without checks); a missing starter is an error.
    """
    data = _read_yaml(path)
    _validate(data, "set.schema.json", path)
    problems: list[str] = []
    seen: set[str] = set()
    for index, challenge in enumerate(data["challenges"]):
        where = f"{path}: $.challenges[{index}]"
        if challenge["slug"] in seen:
            problems.append(f"{where}.slug: duplicate slug {challenge['slug']!r}")
        seen.add(challenge["slug"])
        if challenge["kind"] == "choice":
            keys = [option["key"] for option in challenge["options"]]
            if len(set(keys)) != len(keys):
                problems.append(f"{where}.options: option keys must be unique, got {keys}")
            if challenge["answer"] not in keys:
                problems.append(f"{where}.answer: {challenge['answer']!r} is not one of the option keys {keys}")
            for field, text in _texts_citing_options(challenge):
                for key in OPTION_REF.findall(text):
                    if key not in keys:
                        problems.append(f"{where}.{field}: {{option:{key}}} is not one of the option keys {keys}")
        else:
            code_dir = path.parent / "code" / challenge["slug"]
            if challenge["starter"] != f"code/{challenge['slug']}/starter.py":
                problems.append(f"{where}.starter: must be code/{challenge['slug']}/starter.py")
            for key, filename in CODE_FILES.items():
                file = code_dir / filename
                if file.is_file():
                    text = file.read_text(encoding="utf-8")
                    if key == "checks_source":
                        text = _expand_includes(text, path.parent / "code" / SHARED_CODE_DIR, f"{where}.{filename}")
                    challenge[key] = text
                elif key == "starter_code":
                    problems.append(f"{where}.starter: {file} does not exist")
                else:
                    challenge[key] = ""
    if problems:
        raise ContentError("content is inconsistent:\n" + "\n".join(problems))
    return data


def _texts_citing_options(challenge: dict[str, Any]) -> list[tuple[str, str]]:
    """(JSON path, text) of every text of a multiple-choice question that may cite its options as {option:KEY}."""
    texts = [(field, challenge.get(field) or "") for field in ("prompt", "hint", "explanation")]
    texts += [(f"options[{i}].text", option["text"]) for i, option in enumerate(challenge["options"])]
    return texts


def cite_options(text: str, letters: dict[str, str]) -> str:
    """Content text with each {option:KEY} replaced by the letter the student saw that option under."""
    return OPTION_REF.sub(lambda match: letters.get(match.group(1), match.group(1)), text or "")


def _expand_includes(text: str, shared_dir: Path, where: str) -> str:
    """Replace each `# === include: NAME.py` line by the text of code/_shared/NAME.py (one level, no nesting)."""
    lines = []
    for line in text.splitlines(keepends=True):
        if not line.startswith(INCLUDE_MARKER):
            lines.append(line)
            continue
        name = line[len(INCLUDE_MARKER) :].strip()
        file = shared_dir / name
        if "/" in name or "\\" in name or not name.endswith(".py") or not file.is_file():
            raise ContentError(f"{where}: cannot include {name!r}: no such file in {shared_dir}")
        included = file.read_text(encoding="utf-8")
        lines.append(included if included.endswith("\n") else included + "\n")
    return "".join(lines)


def content_version(content: dict[str, Any]) -> str:
    """The version of a set's content: a hash of its canonical JSON (code files included)."""
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]


def set_files(root: Path = CONTENT_ROOT) -> list[Path]:
    return sorted(root.glob("*/set.yaml"))


# --- Modes ------------------------------------------------------------------------------------------------------


def read_modes(path: Path | None = None) -> dict[str, Any]:
    """Parse and validate modes.yaml: {"default": slug, "modes": {slug: rules}} (rules include slug and title)."""
    path = path or MODES_FILE
    data = _read_yaml(path)
    _validate(data, "modes.schema.json", path)
    modes = {mode["slug"]: mode for mode in data["modes"]}
    if len(modes) != len(data["modes"]):
        raise ContentError(f"{path}: $.modes: mode slugs must be unique")
    if data["default"] not in modes:
        raise ContentError(f"{path}: $.default: {data['default']!r} is not one of the modes {sorted(modes)}")
    return {"default": data["default"], "modes": modes}


def get_modes() -> dict[str, dict[str, Any]]:
    """All modes by slug, in file order."""
    return read_modes()["modes"]


def get_mode(slug: str | None = None) -> dict[str, Any]:
    """The rules of one mode (the default mode when slug is None). KeyError if there is no such mode."""
    data = read_modes()
    return dict(data["modes"][slug or data["default"]])


# --- Storing versions -------------------------------------------------------------------------------------------


def store_set(content: dict[str, Any], *, using: str = "default") -> tuple[Any, bool]:
    """Store a validated set's content as its current version. Returns (ChallengeSet, created).

    Never modifies the content of a stored version; only which version is current changes.
    """
    from quizzes.models import ChallengeSet

    version = content_version(content)
    with transaction.atomic(using=using):
        manager = ChallengeSet.objects.using(using)
        existing = manager.select_for_update().filter(slug=content["slug"], version=version).first()
        current = manager.filter(slug=content["slug"], is_current=True).first()
        if existing is not None and current is not None and existing.pk == current.pk:
            return existing, False
        manager.filter(slug=content["slug"], is_current=True).update(is_current=False)
        if existing is not None:
            manager.filter(pk=existing.pk).update(is_current=True)
            existing.is_current = True
            return existing, False
        created = manager.create(
            slug=content["slug"], version=version, title=content["title"], content=content, is_current=True
        )
        return created, True


def load_challenge_sets(root: Path = CONTENT_ROOT, *, using: str = "default") -> list[tuple[Any, bool]]:
    """Validate every <set>/set.yaml under root (and modes.yaml) and store new versions. All or nothing."""
    read_modes()
    contents = [read_set_file(path) for path in set_files(root)]
    results = [store_set(content, using=using) for content in contents]
    for challenge_set, created in results:
        if created:
            logger.info("challenge set stored", extra={"slug": challenge_set.slug, "version": challenge_set.version})
    return results


def current_set(slug: str = DEFAULT_SET_SLUG) -> Any:
    """The current version of a challenge set, loading the content files first if the database has none."""
    from quizzes.models import ChallengeSet

    challenge_set = ChallengeSet.objects.filter(slug=slug, is_current=True).first()
    if challenge_set is None:
        load_challenge_sets()
        challenge_set = ChallengeSet.objects.filter(slug=slug, is_current=True).first()
    if challenge_set is None:
        raise ChallengeNotFound(f"there is no challenge set {slug!r}")
    return challenge_set


def get_code_challenge(slug: str, version: str | None = None) -> CodeChallengeSpec:
    """One code challenge of a stored set version (None: the current version of the set that holds it).

    Raises ChallengeNotFound when no such version or code challenge exists.
    """
    from quizzes.models import ChallengeSet

    if version is None:
        candidates = list(ChallengeSet.objects.filter(is_current=True))
        if not candidates:
            current_set()
            candidates = list(ChallengeSet.objects.filter(is_current=True))
    else:
        candidates = list(ChallengeSet.objects.filter(version=version))
    for challenge_set in candidates:
        challenge = challenge_set.challenge(slug)
        if challenge is not None and challenge["kind"] == "code":
            return spec_from_content(challenge, challenge_set.version)
    raise ChallengeNotFound(f"no code challenge {slug!r} in challenge set version {version or 'current'}")


def current_code_challenges() -> list[CodeChallengeSpec]:
    """The code challenges of the current set that have hidden checks (the grading pool warms their probes)."""
    challenge_set = current_set()
    return [
        spec_from_content(challenge, challenge_set.version)
        for challenge in challenge_set.challenges
        if challenge.get("kind") == "code" and challenge.get("checks_source")
    ]


def spec_from_content(challenge: dict[str, Any], version: str) -> CodeChallengeSpec:
    return CodeChallengeSpec(
        slug=challenge["slug"],
        title=challenge["title"],
        points=float(challenge["points"]),
        statement=challenge["statement"],
        starter_code=challenge.get("starter_code", ""),
        example_checks=list(challenge.get("example_checks", [])),
        checks_source=challenge.get("checks_source", ""),
        solution_source=challenge.get("solution_source", ""),
        timeout_s=float(challenge["timeout_s"]),
        version=version,
    )
