"""Domain verbs of the challenge set: validate, then act, inside transaction.atomic."""
