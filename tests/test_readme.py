"""The README and docs/: the README opens with the two commands and stays a manual (at most 300
lines); every Python example runs as written; every `videoktr ...` command line parses, with
flags the command knows."""

import re
import shlex
from pathlib import Path

import pytest

from videoktr.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
PAGES = [README, *sorted((ROOT / "docs").glob("*.md"))]
BLOCKS = [(page.name, block) for page in PAGES
          for block in re.findall(r"```python\n(.*?)```", page.read_text(), flags=re.DOTALL)]


def command_lines() -> list[tuple[str, list[str]]]:
    """Each ``videoktr ...`` line of a bash block (continuations joined), as argv."""
    found = []
    for page in PAGES:
        for block in re.findall(r"```bash\n(.*?)```", page.read_text(), flags=re.DOTALL):
            for line in block.replace("\\\n", " ").splitlines():
                line = line.split("#")[0].strip()
                if line.startswith("videoktr ") and "..." not in line and "[" not in line and "--help" not in line:
                    found.append((page.name, shlex.split(line)[1:]))
    return found


def test_readme_starts_with_the_commands():
    text = README.read_text()
    first_block = text.split("```bash\n", 1)[1].split("```", 1)[0]
    commands = [line.split("#")[0].strip() for line in first_block.strip().splitlines()]
    assert commands == ["make demo", "make test"]
    assert text.index("```bash") < text.index("## ")


def test_readme_is_a_manual_of_at_most_300_lines():
    assert len(README.read_text().splitlines()) <= 300


def test_every_docs_page_is_linked_from_the_readme():
    text = README.read_text()
    for page in PAGES[1:]:
        assert f"docs/{page.name}" in text, page.name


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_python_examples_run(index, capsys):
    page, block = BLOCKS[index]
    exec(compile(block, f"{page} python block {index}", "exec"), {})
    assert capsys.readouterr().out.strip(), "an example should print what it shows"


@pytest.mark.parametrize(("page", "argv"), command_lines(), ids=lambda value: " ".join(value) if isinstance(value, list) else value)
def test_command_lines_parse(page, argv):
    args, extra = build_parser().parse_known_args(argv)
    if getattr(args, "takes_config_flags", False):  # train: the rest must be config keys
        from videoktr.train.config import _flag_parser

        known = _flag_parser()._option_string_actions
        assert all(token.split("=")[0] in known for token in extra if token.startswith("--")), extra
    else:
        assert not extra, f"{page}: unknown arguments {extra}"
