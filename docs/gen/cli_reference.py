"""The CLI reference page, generated from the parser ``hpctune`` itself uses (``build_parser``):
every command, its usage, description and options, so the page cannot drift from the code."""

from __future__ import annotations

import argparse

from hpctune.cli.main import build_parser

URI = "reference/cli.md"
NOT_RUNNABLE = "<!-- not runnable: a usage synopsis, generated from the parser -->"


def _commands(parser: argparse.ArgumentParser) -> argparse._SubParsersAction:
    return next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _option_row(action: argparse.Action) -> str:
    name = ", ".join(action.option_strings) or (action.metavar or action.dest)
    if action.option_strings and action.nargs != 0:
        name += f" {action.metavar or action.dest.upper()}"
    default = action.default
    shown = "" if default in (None, False, argparse.SUPPRESS) or action.nargs == 0 else f"`{default}`"
    choices = f" (one of {', '.join(f'`{c}`' for c in action.choices)})" if action.choices else ""
    return f"| `{_cell(name)}` | {_cell(action.help or '')}{choices} | {shown} |"


def _section(name: str, summary: str, parser: argparse.ArgumentParser) -> str:
    usage = parser.format_usage().removeprefix("usage: ").strip()
    actions = [a for a in parser._actions if not isinstance(a, argparse._HelpAction)]
    lines = [f"## `hpctune {name}` {{#hpctune-{name}}}", "", f"{summary.capitalize()}.", ""]
    lines += [NOT_RUNNABLE, "```text", usage, "```", ""]
    if parser.description:
        lines += [parser.description.replace("``", "`"), ""]
    if actions:
        lines += ["| argument | what it does | default |", "| --- | --- | --- |"]
        lines += [_option_row(a) for a in actions]
    if parser.epilog:
        lines += ["", parser.epilog.replace("``", "`")]
    return "\n".join(lines) + "\n"


def markdown() -> str:
    """The page: an index of the commands, then one section per command, in `hpctune --help`'s order."""
    parser = build_parser()
    commands = _commands(parser)
    summaries = {a.dest: a.help or "" for a in commands._choices_actions}
    parts = [
        "# Command reference",
        "",
        "Generated from `hpctune`'s argument parser at every build (`hpctune COMMAND --help` "
        "prints the same). [The command line](../cli.md) explains what the commands are for, "
        "with examples.",
        "",
        "| command | what it does |",
        "| --- | --- |",
        *[f"| [`hpctune {n}`](#hpctune-{n}) | {_cell(summaries.get(n, ''))} |" for n in commands.choices],
        "",
    ]
    parts += [_section(n, summaries.get(n, ""), p) for n, p in commands.choices.items()]
    return "\n".join(parts)
