"""Reasons a parse result was not stored. The parse job decides what each one means."""


class ParseNotStoredError(Exception):
    """A parse result that must not replace the meal's items."""


class MealNotFoundError(ParseNotStoredError):
    """The meal was deleted before its parse result could be stored."""


class StaleParseError(ParseNotStoredError):
    """The meal's description changed after the parse began, so the result describes old text."""


class ParseSupersededError(ParseNotStoredError):
    """A newer parse job owns the meal, so this job's result or failure is ignored."""
