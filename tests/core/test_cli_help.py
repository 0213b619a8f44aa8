"""Every option and argument of EvalHub's own commands says what it takes in --help."""

from __future__ import annotations

from django.core.management import get_commands, load_command_class

# What Django adds to every command (its own help texts).
DJANGO_OPTIONS = {"help", "version", "verbosity", "settings", "pythonpath", "traceback",
                  "no_color", "force_color", "skip_checks"}


def test_every_option_of_our_commands_has_help_text():
    ours = sorted(name for name, app in get_commands().items() if app.startswith("evalhub"))
    assert {"generate", "create_campaign", "export_preferences", "run_embedded"} <= set(ours)
    missing = []
    for name in ours:
        parser = load_command_class(get_commands()[name], name).create_parser("manage.py", name)
        missing += [f"{name} {action.option_strings or action.dest}"
                    for action in parser._actions
                    if action.dest not in DJANGO_OPTIONS and not action.help]
    assert not missing, missing
