"""The shipped USDA table, its build command and get_parser."""

import gzip
import importlib.util

import pytest

from meals.parsing import get_parser
from meals.parsing.foods import TABLE_PATH, build_table_rows, find_sr28_dir, load_foods, write_table


def test_shipped_table_is_small_and_loads():
    foods = load_foods()

    assert TABLE_PATH.stat().st_size < 3 * 1024 * 1024
    assert len(foods) > 5000
    assert all(food.kcal >= 0 for food in foods)


@pytest.mark.skipif(importlib.util.find_spec("usda_nutrition") is None, reason="requirements-usda.txt not installed")
def test_build_is_reproducible(tmp_path):
    rows = build_table_rows(find_sr28_dir())
    first = tmp_path / "first.tsv.gz"
    second = tmp_path / "second.tsv.gz"
    write_table(rows, first)
    write_table(build_table_rows(find_sr28_dir()), second)

    assert first.read_bytes() == second.read_bytes()
    assert gzip.decompress(first.read_bytes()) == gzip.decompress(TABLE_PATH.read_bytes())


def test_get_parser_without_key_is_local(settings):
    settings.OPENAI_API_KEY = ""

    parser = get_parser()

    assert parser.name == "local"
    assert get_parser() is parser


def test_get_parser_with_key_is_openai(settings, openai_server):
    settings.OPENAI_API_KEY = "sk-test"
    settings.OPENAI_BASE_URL = openai_server.base_url
    settings.OPENAI_MODEL = "gpt-test"
    settings.OPENAI_TIMEOUT = 3.0

    parser = get_parser()

    assert parser.name == "openai"
    assert parser.model == "gpt-test"
    assert parser.client.max_retries == 0
    assert str(parser.client.base_url).rstrip("/") == openai_server.base_url
