"""The one hook from grading back to the rest of the tool."""

from django.dispatch import Signal

# Sent with `submission=CodeSubmission` inside the transaction that writes the final result (exactly once per
# submission). quizzes listens to score the question and queue the gradebook update in the same transaction.
submission_graded = Signal()
