#!/usr/bin/env python
import os
import sys


def output_never_fails() -> None:
    """Print what the terminal's encoding cannot show as escapes (``caf\\xe9``) instead of
    failing with ``UnicodeEncodeError`` halfway through a command's output: a project, model
    or prompt named in any script, on a terminal or pipe whose encoding is ASCII or Latin-1
    (``PYTHONIOENCODING=ascii``, ``LANG=C`` on an old Python)."""
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(errors="backslashreplace")


def main() -> None:
    output_never_fails()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "evalhub.config.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
