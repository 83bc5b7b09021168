"""Domain verbs of code grading: validate, then act, inside transaction.atomic."""
