#!/usr/bin/env python
"""Django's command-line utility for Spare Cycles.

The source root is platform/, which is deliberately not a package: a package
called ``platform`` would shadow the standard library module.
"""
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT / "platform"))


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sparecycles.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
