"""The command line's conventions, over every command: one spelling of flags (underscores, as
transformers spells them) with the dashed spelling accepted too."""

import argparse

import pytest

from videoktr.cli import COMMANDS, build_parser, main


def option_actions(parser: argparse.ArgumentParser):
    """Every (command path, action) with option strings, subcommands included."""
    stack = [("videoktr", parser)]
    while stack:
        path, current = stack.pop()
        for action in current._actions:
            if isinstance(action, argparse._SubParsersAction):
                stack += [(f"{path} {name}", sub) for name, sub in action.choices.items()]
            elif action.option_strings and action.dest != "help":
                yield path, action


def test_every_command_has_its_own_module():
    assert {module.__name__.rsplit(".", 1)[1] for module in COMMANDS} == {
        "env", "tiny_model", "synth", "train", "rollout_server", "evaluate", "demo", "ablate", "analyze"}


def test_multi_word_flags_are_spelled_with_underscores_and_accepted_with_dashes():
    found = 0
    for path, action in option_actions(build_parser()):
        long_names = [name[2:] for name in action.option_strings if name.startswith("--")]
        if any("_" in name or "-" in name for name in long_names):
            found += 1
            underscored = [name for name in long_names if "-" not in name]
            assert underscored and underscored[0] == action.dest, (path, action.option_strings)
            assert f"--{action.dest.replace('_', '-')}" in action.option_strings, (path, action.option_strings)
    assert found >= 10  # num_frames, max_pixels, top_p, ..., rl_steps, eval_limit, test_fraction


@pytest.mark.parametrize("spelling", ["--test_fraction", "--test-fraction"])
def test_both_spellings_reach_the_command(spelling, tmp_path, capsys):
    assert main(["synth", "--out", str(tmp_path / "w"), "--n", "12", spelling, "0.5"]) == 0
    assert (tmp_path / "w" / "test.jsonl").read_text().count("\n") == 6  # the default (0.2) would give fewer
