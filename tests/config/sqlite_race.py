"""Run as a script against a SQLite file (`python -m tests.config.sqlite_race`, DATABASE_URL=sqlite:///...): migrate,
then race the domain verbs from several threads, each on its own connection, as a double-clicked Submit and the
demo's worker do. Prints one JSON line: every outcome ("ok", "refused" or the exception's name and message)."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402

from quizzes import services  # noqa: E402
from quizzes.models import Answer, Attempt  # noqa: E402
from tests.quizzes.factories import PlacementFactory, student_for  # noqa: E402

FIRST = "why-skip-connections"
THREADS = 8
ROUNDS = 5


def race(action: Callable[[int], object]) -> list[str]:
    barrier = threading.Barrier(THREADS)
    outcomes: list[str] = []
    lock = threading.Lock()

    def run(i: int) -> None:
        try:
            barrier.wait()
            action(i)
            outcome = "ok"
        except services.Refused:
            outcome = "refused"
        except Exception as exc:  # noqa: BLE001 - reported to the test
            outcome = f"{type(exc).__name__}: {exc}"
        finally:
            connection.close()
        with lock:
            outcomes.append(outcome)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return outcomes


def main() -> None:
    call_command("migrate", verbosity=0)
    with connection.cursor() as cursor:
        pragmas = {name: cursor.execute(f"PRAGMA {name}").fetchone()[0] for name in ("journal_mode", "busy_timeout")}
    rounds = []
    for _ in range(ROUNDS):
        placement = PlacementFactory(mode="timed", slugs=[FIRST])
        attempt = services.start_attempt(placement, student_for(placement.resource_link))
        services.show_question(attempt, FIRST)
        # The same answer, clicked eight times at once (a double click, a worker writing meanwhile).
        outcomes = race(lambda i, pk=attempt.pk: services.submit_answer(Attempt.objects.get(pk=pk), FIRST, "C"))
        rounds.append({"outcomes": outcomes, "answers": Answer.objects.filter(state__attempt=attempt).count()})
    options = connection.settings_dict["OPTIONS"]
    print(json.dumps({**pragmas, "transaction_mode": options.get("transaction_mode"), "rounds": rounds}))


if __name__ == "__main__":
    main()
