"""Input checks shared by API schemas."""

import unicodedata

from ninja import Schema
from pydantic import ConfigDict

# Line breaks and tabs are ordinary in a meal typed on a phone; other control characters
# are not text.
ALLOWED_CONTROL_CHARACTERS = {"\n", "\r", "\t"}


class StrictSchema(Schema):
    """An input schema that rejects fields it does not know."""

    model_config = ConfigDict(extra="forbid")


def clean_text(value, *, field, min_length, max_length):
    """Trim value and check its length and characters; raise ValueError naming the problem."""
    value = value.strip()
    if len(value) < min_length:
        raise ValueError(f"{field} must not be empty or only whitespace")
    if len(value) > max_length:
        raise ValueError(f"{field} has {len(value)} characters after trimming; the maximum is {max_length}")
    for position, character in enumerate(value):
        if character in ALLOWED_CONTROL_CHARACTERS:
            continue
        if unicodedata.category(character) in ("Cc", "Cs"):
            raise ValueError(
                f"{field} contains the control character U+{ord(character):04X} at position {position}; remove it"
            )
    return value
