"""Run one benchmark: ``python -m bench NAME [options]``.

Each benchmark is a module ``bench/NAME.py`` with ``main(argv)``; it prints
its figures, ratios against a baseline run in the same process, and ends
with a one-line summary.
"""
import importlib
import os
import pkgutil
import sys
from pathlib import Path


def available():
    folder = Path(__file__).parent
    return sorted(m.name for m in pkgutil.iter_modules([str(folder)]) if not m.name.startswith("_"))


def main(argv):
    names = available()
    if not argv or argv[0] in {"-h", "--help"}:
        print("usage: python -m bench NAME [options]\nbenchmarks: " + ", ".join(names))
        return 0 if argv else 2
    name = argv[0]
    if name not in names:
        print(f"unknown benchmark {name!r}; choose one of: {', '.join(names)}", file=sys.stderr)
        return 2
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")
    import django

    django.setup()
    module = importlib.import_module(f"bench.{name}")
    return module.main(argv[1:]) or 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
