"""Training configuration: presets, YAML, flags, and clear errors."""

import pytest

from videoktr.train.config import PRESETS, ConfigError, VideoGRPOConfig, load_config, parse_ratio


@pytest.fixture
def out(tmp_path):
    return ["--output_dir", str(tmp_path / "run")]


def write_yaml(tmp_path, text):
    path = tmp_path / "recipe.yaml"
    path.write_text(text)
    return path


def test_defaults_are_the_papers_choices(out):
    config = load_config(out)
    assert config.token_selection == "ktr"
    assert config.selected_signals == ("visual", "temporal", "entropy")
    assert config.ktr_ratio == 0.2 and config.ktr_scope == "group" and config.ktr_weighting == "hard"
    assert config.visual_mode == "zero_embeddings" and config.temporal_mode == "permute_groups"
    assert config.loss_aggregation == "seq_mean" and config.mask_kl is True
    assert config.epsilon_high == config.epsilon == 0.2
    assert config.fps == 2.0 and (config.min_frames, config.max_frames) == (4, 16)
    assert isinstance(config, VideoGRPOConfig) and config.logging_steps == 1


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_each_preset_sets_its_keys(preset, out):
    config = load_config(["--preset", preset, *out])
    for key, value in PRESETS[preset].items():
        assert getattr(config, key) == value, key


def test_presets_select_the_papers_token_sets(out):
    assert load_config(["--preset", "grpo", *out]).selected_signals == ()
    assert load_config(["--preset", "t_grpo", *out]).temporal_reward_bonus is True
    entropy = load_config(["--preset", "entropy_80_20", *out])
    assert entropy.selected_signals == ("entropy",) and entropy.ktr_method == "quantile"


def test_yaml_overrides_preset_and_flags_override_yaml(tmp_path, out):
    recipe = write_yaml(tmp_path, "preset: entropy_80_20\nktr_scope: group\nnum_generations: 4\nbeta: 0.01\n")
    config = load_config(["--beta", "0.0", *out], config_file=recipe)
    assert config.token_selection == "entropy"  # from the preset
    assert config.ktr_scope == "group"  # the YAML beats the preset
    assert config.num_generations == 4
    assert config.beta == 0.0  # the flag beats the YAML


def test_per_signal_ratios_from_yaml_mapping_and_flag_string(tmp_path, out):
    recipe = write_yaml(tmp_path, "ktr_ratio: {visual: 0.3, temporal: 0.2, entropy: 0.1}\n")
    assert load_config(out, config_file=recipe).ktr_ratio == {"visual": 0.3, "temporal": 0.2, "entropy": 0.1}
    config = load_config(["--ktr_signals", "visual", "entropy", "--ktr_ratio", "visual=0.25,entropy=0.1", *out])
    assert config.ktr_ratio == {"visual": 0.25, "entropy": 0.1}
    assert parse_ratio(0.5) == 0.5


def test_keyword_overrides_for_library_use(tmp_path):
    config = load_config(preset="grpo", output_dir=str(tmp_path), num_generations=3, beta=0.0)
    assert config.num_generations == 3 and config.token_selection == "none"
    with pytest.raises(ConfigError, match="ktr_signals has no effect"):  # grpo trains every token
        load_config(preset="grpo", output_dir=str(tmp_path), ktr_signals=["visual"])


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--ktr_scop", "group"], "unknown key 'ktr_scop' in the command line; did you mean ktr_scope"),
        (["--ktr_scope", "prompt"], "ktr_scope='prompt' is not allowed; choose one of: sequence, group, batch"),
        (["--token_selection", "all"], "token_selection='all' is not allowed; choose one of: ktr, entropy, none"),
        (["--ktr_weighting", "gauss"], "choose one of: hard, softmax, sigmoid, linear, exponential"),
        (["--visual_mode", "blur"], "choose one of: zero_embeddings, drop_tokens, zero_pixels"),
        (["--ktr_signals", "visual", "audio"], "ktr_signals='audio' is not allowed"),
        (["--ktr_ratio", "1.5"], r"ktr_ratio='1.5' must lie in \[0, 1\]"),
        (["--ktr_ratio", "lots"], "is not a number"),
        (["--ktr_ratio", "audio=0.2"], "unknown signal 'audio'"),
        (["--ktr_ratio", "visual=0.2"], r"gives no ratio for \['temporal', 'entropy'\]"),
        (["--preset", "ppo"], "preset='ppo' is not allowed; choose one of: video_ktr, grpo, t_grpo, entropy_80_20"),
        (["--num_generations", "1"], "num_generations must be at least 2"),
        (["--min_frames", "8", "--max_frames", "4"], "min_frames=8 is larger than max_frames=4"),
        (["--top_p", "0"], r"top_p=0.0 must lie in \(0, 1\]"),
        (["--reward_weights", "1.0"], "reward_weights has 1 values for 2 reward_funcs"),
        (["--loss_aggregation", "mean"], "loss_aggregation='mean' is not allowed"),
        (["--video_min_pixels", "200", "--video_max_pixels", "100"],
         "video_min_pixels=200 is larger than video_max_pixels=100"),
        (["--loss_type", "ppo"], "loss_type='ppo' is not allowed; choose one of: grpo, bnpo, dr_grpo, dapo"),
        (["--loss_type", "dapo", "--loss_aggregation", "token_mean"],
         "loss_type='dapo' is loss_aggregation='token_mean_global', but loss_aggregation='token_mean' is set too"),
        (["--on_bad_sample", "ignore"], "on_bad_sample='ignore' is not allowed; choose one of: skip, raise"),
        (["--encoder_chunk_groups", "0"], "encoder_chunk_groups=0 must be a positive integer"),
        (["--prefill_chunk_tokens", "-5"], "prefill_chunk_tokens=-5 must be a positive integer"),
        (["--prefill_chunk_tokens", "512", "--activation_checkpointing", "true"],
         r"prefill_chunk_tokens checkpoints the prompt chunk by chunk itself, .*set one of them"),
    ],
)
def test_errors_name_the_key_and_the_allowed_values(argv, message, out):
    with pytest.raises(ConfigError, match=message):
        load_config([*argv, *out])


def test_training_arguments_errors_become_config_errors(out):
    import torch

    if torch.cuda.is_available():
        pytest.skip("bf16 is valid on this machine's GPU")
    with pytest.raises(ConfigError, match="bf16"):
        load_config(["--bf16", "true", *out])


def test_yaml_errors(tmp_path, out):
    with pytest.raises(ConfigError, match="unknown key 'num_generation' in .*recipe.yaml; did you mean num_generations"):
        load_config(out, config_file=write_yaml(tmp_path, "num_generation: 4\n"))
    with pytest.raises(ConfigError, match="must hold a mapping"):
        load_config(out, config_file=write_yaml(tmp_path, "- a\n- b\n"))
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(out, config_file=tmp_path / "missing.yaml")
    with pytest.raises(ConfigError, match="unknown key 'ratio' in the arguments"):
        load_config(out, ratio=0.2)


def test_typed_values_pass_through_untouched(tmp_path):
    """A library caller passes ktr_ratio as a mapping (no 'visual=..' string round trip), and a
    YAML scalar that YAML reads as text (1e-6) takes its field's type."""
    ratios = {"visual": 0.3, "temporal": 0.2, "entropy": 0.1}
    config = load_config(output_dir=str(tmp_path), ktr_ratio=ratios)
    assert config.ktr_ratio == ratios and isinstance(config.ktr_ratio, dict)
    recipe = write_yaml(tmp_path, "learning_rate: 1e-6\nnum_generations: '4'\nmask_kl: false\n")
    config = load_config(["--output_dir", str(tmp_path)], config_file=recipe)
    assert config.learning_rate == 1e-6 and config.num_generations == 4 and config.mask_kl is False
    with pytest.raises(ConfigError, match="num_generations='four' in .*recipe.yaml is not a valid value"):
        load_config(["--output_dir", str(tmp_path)], config_file=write_yaml(tmp_path, "num_generations: four\n"))


def test_flags_are_accepted_with_dashes_and_booleans_with_no_(out):
    config = load_config(["--ktr-ratio", "0.3", "--num-generations", "4", "--no_mask_kl", *out])
    assert config.ktr_ratio == 0.3 and config.num_generations == 4 and config.mask_kl is False


def test_a_key_means_the_same_written_with_an_equals_sign(out):
    """``--preset=grpo`` once trained video_ktr while the saved arguments said grpo."""
    for argv in (["--preset=grpo"], ["--preset", "grpo"]):
        config = load_config([*argv, *out])
        assert config.preset == "grpo" and config.token_selection == "none" and config.selected_signals == ()
    assert load_config(["--ktr_ratio=0.3", "--num_generations=4", *out]).num_generations == 4


def test_a_flag_without_its_value_is_a_config_error(out):
    with pytest.raises(ConfigError, match="argument --preset: expected one argument"):
        load_config([*out, "--preset"])


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--preset", "grpo", "--ktr_signals", "visual"], r"ktr_signals has no effect with token_selection='none' \(preset grpo\)"),
        (["--preset", "t_grpo", "--ktr_ratio", "0.3", "--ktr_scope", "batch"], "ktr_ratio, ktr_scope have no effect"),
        (["--preset", "entropy_80_20", "--ktr_signals", "visual"], "selects by entropy alone"),
    ],
)
def test_keys_the_method_ignores_are_refused(argv, message, out):
    with pytest.raises(ConfigError, match=message):
        load_config([*argv, *out])
    load_config(["--preset", "entropy_80_20", "--ktr_signals", "entropy", *out])  # says what it does: fine


@pytest.mark.parametrize(
    ("text", "message"),
    [("ktr_ratio: !!python/object/apply:os.system ['echo owned']\n", "line 1 is not a plain YAML mapping"),
     ("beta: [0.1\n", "is not a plain YAML mapping")],
)
def test_yaml_that_is_not_plain_data_is_a_config_error(text, message, tmp_path, out):
    with pytest.raises(ConfigError, match=message):
        load_config(out, config_file=write_yaml(tmp_path, text))


@pytest.mark.parametrize(("loss_type", "aggregation"), [("grpo", "seq_mean"), ("bnpo", "token_mean"),
                                                         ("dr_grpo", "token_sum_norm"), ("dapo", "token_mean_global")])
def test_trl_loss_type_names_are_aliases(loss_type, aggregation, out):
    config = load_config(["--loss_type", loss_type, *out])
    assert config.loss_aggregation == aggregation and config.loss_type == loss_type
    assert config.use_bias_correction_kl is False  # ours keeps the paper's k3 term; TRL 1.16 turns it on
    assert load_config(["--loss_type", loss_type, "--loss_aggregation", aggregation, *out]).loss_aggregation == aggregation
    assert load_config(["--use_bias_correction_kl", "true", *out]).use_bias_correction_kl is True
