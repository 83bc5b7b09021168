"""Domain verbs of the LTI side: validate, then act, inside transaction.atomic."""
