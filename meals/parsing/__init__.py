"""Meal parsing: free text in, a validated list of food items with nutrients out.

`get_parser()` returns the OpenAI parser when `settings.OPENAI_API_KEY` is set and the
local USDA parser otherwise. Both raise only the job runtime's `RetryableError` and
`TerminalError` subclasses defined in `meals.parsing.base`.
"""

from __future__ import annotations

import threading

from .base import (
    NUTRIENTS,
    NoFoodItemsError,
    OutputTruncatedError,
    ParsedItem,
    ParsedMeal,
    ParseError,
    Parser,
    RefusalError,
    SchemaError,
    UpstreamError,
    ValueOutOfRangeError,
)

__all__ = [
    "NUTRIENTS",
    "NoFoodItemsError",
    "OutputTruncatedError",
    "ParseError",
    "ParsedItem",
    "ParsedMeal",
    "Parser",
    "RefusalError",
    "SchemaError",
    "UpstreamError",
    "ValueOutOfRangeError",
    "get_parser",
]

_lock = threading.Lock()
_parsers: dict[tuple, Parser] = {}


def get_parser() -> Parser:
    """Return the parser the settings select, created once per process and configuration.

    Reads OPENAI_API_KEY, OPENAI_BASE_URL, OPENAI_MODEL and OPENAI_TIMEOUT from Django
    settings at call time, so `override_settings` in tests selects another parser.
    """
    from django.conf import settings

    api_key = getattr(settings, "OPENAI_API_KEY", "") or ""
    if api_key:
        key = (
            "openai",
            api_key,
            getattr(settings, "OPENAI_BASE_URL", None) or None,
            getattr(settings, "OPENAI_MODEL", "gpt-4o-mini"),
            float(getattr(settings, "OPENAI_TIMEOUT", 30.0)),
        )
    else:
        key = ("local",)
    parser = _parsers.get(key)
    if parser is not None:
        return parser
    with _lock:
        parser = _parsers.get(key)
        if parser is None:
            parser = _create_parser(key)
            _parsers[key] = parser
    return parser


def _create_parser(key: tuple) -> Parser:
    if key[0] == "openai":
        from .openai import OpenAIParser

        _, api_key, base_url, model, timeout = key
        return OpenAIParser(api_key=api_key, base_url=base_url, model=model, timeout=timeout)

    from .local import LocalParser

    return LocalParser()
