#!/usr/bin/env python
import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "evalhub.config.settings")
    from django.core.management import execute_from_command_line

    from evalhub.config.env import ImproperlyConfiguredEnv

    try:
        execute_from_command_line(sys.argv)
    except ImproperlyConfiguredEnv as exc:
        # A setting the environment got wrong is the operator's to fix: the message names the
        # variable and what it accepts, and a traceback through Django's start-up only hides it.
        sys.stderr.write(f"EvalHub configuration error: {exc}\n")
        sys.exit(2)


if __name__ == "__main__":
    main()
