"""What a newcomer reads first: ``videoktr train --help`` lists the keys set first, with types
and defaults; ``--help_keys`` gives every videoktr key its type and default."""

import pytest

from videoktr.cli import main


def test_train_help_lists_the_common_keys_with_types_and_defaults(capsys):
    from videoktr.train import load_config

    load_config(["--max_steps", "1"])  # HfArgumentParser narrows the fields' types in place: the help must not
    with pytest.raises(SystemExit) as stop:
        main(["train", "--help"])
    assert stop.value.code == 0
    out = capsys.readouterr().out
    for line in ("--max_steps int (default -1)", "--save_steps float (default 500)",
                 "--report_to None | str | list[str] (default 'none')", "--resume_from_checkpoint str | None",
                 "--learning_rate float (default 5e-05)", "--output_dir str | None", "videoktr synth"):
        assert line in out, line
    keys = out[out.index("common configuration keys"):]
    assert keys.index("--model ") < keys.index("--max_steps ") < keys.index("--resume_from_checkpoint ")


def test_help_keys_gives_every_key_its_type_and_default(capsys):
    assert main(["train", "--help_keys"]) == 0
    out = capsys.readouterr().out
    assert "--ktr_ratio float | dict[str, float] (default 0.2)" in out
    assert "--loss_aggregation str (default 'seq_mean')" in out
    assert "--video_max_pixels int | None (default None)" in out
    assert "--ktr_signals list[str] (default ['visual', 'temporal', 'entropy'])" in out
