"""End-to-end training on a tiny Qwen2.5-VL and a small local dataset, on CPU."""

import json
import math
import re
import shutil
import warnings
from pathlib import Path

import pytest
import torch

from videoktr.cli import main
from videoktr.core import AGGREGATIONS
from videoktr.data.dataset import VideoR1Dataset
from videoktr.models import get_adapter, load_local_model
from videoktr.train import load_config
from videoktr.train.trainer import VideoGRPOTrainer

from .conftest import train_args


def read_state(checkpoint_dir):
    return json.loads((checkpoint_dir / "trainer_state.json").read_text())


@pytest.mark.parametrize("flags", [["--loss_type", "dr_grpo"], ["--loss_type", "dapo", "--gradient_accumulation_steps", "2",
                                                                "--per_device_train_batch_size", "1"],
                                   ["--loss_type", "bnpo", "--use_bias_correction_kl", "true"]],
                         ids=["dr_grpo", "dapo", "bnpo_bias_corrected_kl"])
def test_trl_loss_types_train_through_the_cli(flags, tiny_model_dir, dataset_file, tmp_path):
    out = tmp_path / "run"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        code = main(["train", *train_args(tiny_model_dir, dataset_file, out, "--max_steps", "1", "--save_steps", "1",
                                          *flags)])
    assert code == 0
    logs = [entry for entry in read_state(out / "checkpoint-1")["log_history"] if "loss" in entry]
    assert len(logs) == 1 and math.isfinite(logs[0]["loss"]) and math.isfinite(logs[0]["grad_norm"])
    recorded = json.loads((out / "videoktr_run.json").read_text())
    assert recorded["config"]["loss_type"] == flags[1]


@pytest.mark.parametrize("preset", ["video_ktr", "grpo", "t_grpo", "entropy_80_20"])
def test_each_preset_trains_two_steps_and_checkpoints(preset, tiny_model_dir, dataset_file, tmp_path):
    out = tmp_path / preset
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        code = main(["train", "--preset", preset, *train_args(tiny_model_dir, dataset_file, out)])
    assert code == 0
    state = read_state(out / "checkpoint-2")
    assert state["global_step"] == 2
    logs = [entry for entry in state["log_history"] if "loss" in entry]
    assert len(logs) == 2
    for entry in logs:
        for key in ("reward", "rewards/accuracy", "rewards/format", "completion_length", "clip_fraction", "kl",
                    "selected_fraction", "time/attribution_share"):
            assert key in entry, key
    last = logs[-1]
    assert last["skipped_samples"] == 2  # the missing and the corrupt video, each counted once
    if preset == "video_ktr":
        for signal in ("visual", "temporal", "entropy"):
            assert 0.15 < last[f"selected_fraction/{signal}"] < 0.3  # ceil(0.2 n) of n tokens
        assert "overlap/temporal_visual" in last
        assert last["selected_fraction/union"] < 0.65
    elif preset == "entropy_80_20":
        assert set(k for k in last if k.startswith("selected_fraction/")) == {"selected_fraction/entropy",
                                                                              "selected_fraction/union"}
    else:
        assert last["selected_fraction"] == 1.0  # vanilla GRPO updates every token
    if preset in ("grpo", "t_grpo"):
        assert last["grad_share/unselected"] == 0.0  # nothing is dropped
    else:
        assert 0.0 <= last["grad_share/unselected"] < 1.0
        assert all(0.0 <= last[f"grad_share/{s}"] <= 1.0 for s in ("entropy",))
    if preset == "t_grpo":
        assert "rewards/temporal_bonus" in last and "temporal_bonus_applied" in last
    assert (out / "model.safetensors").exists() and (out / "processor_config.json").exists()


def build_trainer(tiny_model_dir, dataset_file, out, *extra):
    config = load_config(train_args(tiny_model_dir, dataset_file, out, *extra))
    model, processor = load_local_model(tiny_model_dir)
    dataset = VideoR1Dataset(dataset_file, fps=config.fps, min_frames=config.min_frames, max_frames=config.max_frames)
    return VideoGRPOTrainer(model=model, args=config, train_dataset=dataset, processing_class=processor)


def fresh_rollouts(trainer, count=2):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rollouts = trainer._prepare_inputs([trainer.train_dataset[i] for i in range(count)])
    for rollout in rollouts:  # fixed, nonzero advantages: the test must not depend on sampled rewards
        rollout.advantages = torch.tensor([1.0, -0.5, 0.25])
    return rollouts


@pytest.mark.parametrize("preset", ["video_ktr", "grpo"])
def test_training_raises_a_learnable_reward(preset, tiny_model_dir, dataset_file, tmp_path):
    """The whole loop (sampling, rewards, group advantages, key-token mask, clipped loss, the
    optimizer step) moves the policy the way the reward asks: the share of the letter "e" in a
    completion, which a random policy can raise by choosing other tokens, climbs from ~0.08
    (measured: 0.25-0.30 after 20 steps at this rate). A flipped advantage sign, a mask that
    selects nothing or a loss detached from the policy leaves it flat or sends it down."""
    trainer = build_trainer(
        tiny_model_dir, dataset_file, tmp_path / "out", "--preset", preset, "--max_steps", "20",
        "--save_strategy", "no", "--num_generations", "6", "--learning_rate", "1e-2", "--lr_scheduler_type", "constant",
        "--reward_funcs", "tests.train.fixture_rewards:letter_e_share",
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer.train()
    rewards = [entry["reward"] for entry in trainer.state.log_history if "reward" in entry]
    assert len(rewards) == 20
    first, last = sum(rewards[:5]) / 5, sum(rewards[-5:]) / 5
    assert last > 2 * first, (first, last)


def test_ratio_one_ktr_loss_equals_vanilla_grpo_loss(tiny_model_dir, dataset_file, tmp_path):
    trainer = build_trainer(tiny_model_dir, dataset_file, tmp_path, "--preset", "video_ktr", "--ktr_ratio", "1.0")
    rollouts = fresh_rollouts(trainer)
    ktr = trainer.compute_loss(trainer.model, rollouts)  # the first loss forward selects (score_in_loss_forward)
    for rollout in rollouts:
        assert torch.equal(rollout.token_weights, rollout.completion_mask)
        rollout.token_weights = None
    vanilla = trainer.compute_loss(trainer.model, rollouts)
    assert ktr.item() != 0.0
    assert ktr.item() == pytest.approx(vanilla.item(), rel=1e-6, abs=1e-7)


def test_only_selected_tokens_receive_gradient(tiny_model_dir, dataset_file, tmp_path, monkeypatch):
    trainer = build_trainer(tiny_model_dir, dataset_file, tmp_path, "--preset", "video_ktr", "--beta", "0.04")
    rollouts = fresh_rollouts(trainer, count=1)
    captured = []
    import videoktr.train.trainer as trainer_module

    original = trainer_module.grpo_loss

    def capturing_loss(logps, *args, **kwargs):
        logps.register_hook(lambda grad: captured.append(grad.detach().clone()))
        return original(logps, *args, **kwargs)

    monkeypatch.setattr(trainer_module, "grpo_loss", capturing_loss)
    trainer.compute_loss(trainer.model, rollouts).backward()
    (grad,) = captured
    selected = rollouts[0].token_weights
    assert selected.any() and (~selected & rollouts[0].completion_mask).any()
    assert (grad[~selected] == 0).all()
    assert (grad[selected] != 0).all()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for n, p in trainer.model.named_parameters() if "visual" in n)


def test_resume_continues_steps_and_optimizer_state(tiny_model_dir, dataset_file, tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        straight = tmp_path / "straight"
        assert main(["train", *train_args(tiny_model_dir, dataset_file, straight, "--save_steps", "1")]) == 0
        # An interrupted run: only the step-1 checkpoint of the same job survives.
        resumed = tmp_path / "resumed"
        resumed.mkdir()
        shutil.copytree(straight / "checkpoint-1", resumed / "checkpoint-1")
        assert main(["train", *train_args(tiny_model_dir, dataset_file, resumed, "--save_steps", "1",
                                          "--resume_from_checkpoint", "latest")]) == 0
    state = read_state(resumed / "checkpoint-2")
    assert state["global_step"] == 2
    assert [e["step"] for e in state["log_history"] if "loss" in e] == [1, 2]
    from safetensors.torch import load_file

    straight_weights = load_file(straight / "checkpoint-2" / "model.safetensors")
    resumed_weights = load_file(resumed / "checkpoint-2" / "model.safetensors")
    initial = load_file(tiny_model_dir / "model.safetensors")
    changed = [name for name in initial if not torch.equal(initial[name], straight_weights[name])]
    assert changed, "training changed no weight: the comparison below would be vacuous"
    for name in straight_weights:
        assert torch.allclose(straight_weights[name], resumed_weights[name], atol=1e-6), name
    straight_optimizer = torch.load(straight / "checkpoint-2" / "optimizer.pt", weights_only=True)
    resumed_optimizer = torch.load(resumed / "checkpoint-2" / "optimizer.pt", weights_only=True)
    for key, value in straight_optimizer["state"].items():
        assert value["step"] == resumed_optimizer["state"][key]["step"] == 2
        assert torch.allclose(value["exp_avg"], resumed_optimizer["state"][key]["exp_avg"], atol=1e-6)


def test_rollout_dump_holds_scores_masks_and_rewards(tiny_model_dir, dataset_file, tmp_path):
    out = tmp_path / "dump"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert main(["train", *train_args(tiny_model_dir, dataset_file, out, "--rollout_dump_steps", "1",
                                          "--max_steps", "1", "--per_device_train_batch_size", "1")]) == 0
    dumps = sorted((out / "rollouts").glob("*.jsonl"))
    assert dumps
    records = [json.loads(line) for line in dumps[0].read_text().splitlines()]
    assert len(records) == 3  # G completions of the one prompt of step 0
    for record in records:
        length = len(record["token_ids"])
        assert len(record["tokens"]) == length and len(record["selected"]) == length
        assert set(record["scores"]) == {"visual", "temporal", "entropy"}
        assert all(len(values) == length for values in record["scores"].values())
        assert set(record["rewards"]) >= {"accuracy", "format"}
        assert isinstance(record["advantage"], float)
        assert "train.jsonl" in record["prompt_id"]
        assert len(record["gradient_weights"]) == length and all(0 <= g <= 2 for g in record["gradient_weights"])
    # the logged share of the update the mask drops, recomputed from the dump (one micro-batch: the step)
    from videoktr.core import gradient_share

    weights = torch.tensor([w for r in records for w in r["gradient_weights"]]).reshape(len(records), -1)
    advantages = torch.tensor([r["advantage"] for r in records])
    dropped = torch.tensor([[w == 0 for w in r["selected"]] for r in records])
    expected = gradient_share(advantages, weights, dropped, torch.ones_like(dropped)).item()
    logged = [e for e in json.loads((out / "checkpoint-1" / "trainer_state.json").read_text())["log_history"]
              if "grad_share/unselected" in e]
    assert logged and logged[0]["grad_share/unselected"] == pytest.approx(expected, abs=1e-5)


def test_bad_sample_raise_policy_stops_with_a_clear_error(tiny_model_dir, dataset_file, tmp_path, capsys):
    from videoktr.data.dataset import DatasetError
    from videoktr.train import load_config, train

    args = train_args(tiny_model_dir, dataset_file, tmp_path / "strict", "--on_bad_sample", "raise", "--max_steps", "8")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(DatasetError, match=r"(missing|corrupt)\.mp4"):  # the library raises ...
            train(load_config(args))
        assert main(["train", *args, "--overwrite_output_dir", "true"]) == 2  # ... the CLI says it in one line
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error.startswith("videoktr train: ") and re.search(r"(missing|corrupt)\.mp4", error)


def test_cli_config_errors_exit_2_with_the_key(tiny_model_dir, dataset_file, tmp_path, capsys):
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("preset: video_ktr\nktr_weighting: gaussian\n")
    assert main(["train", "--config", str(recipe), *train_args(tiny_model_dir, dataset_file, tmp_path)]) == 2
    assert "ktr_weighting='gaussian' is not allowed" in capsys.readouterr().err
    assert main(["train", "--output_dir", str(tmp_path)]) == 2
    assert "model is required" in capsys.readouterr().err


def test_num_iterations_reuses_rollouts_with_old_logps(tiny_model_dir, dataset_file, tmp_path, monkeypatch):
    trainer = build_trainer(tiny_model_dir, dataset_file, tmp_path, "--num_iterations", "2",
                            "--gradient_accumulation_steps", "2", "--max_steps", "2",
                            "--per_device_train_batch_size", "1")
    generated = []
    original = trainer._rollouts
    monkeypatch.setattr(trainer, "_rollouts", lambda samples, first_slot: generated.extend(s.location for s in samples)
                        or original(samples, first_slot))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer.train()
    # 2 optimizer steps x 2 accumulation slots = 4 micro-steps, but only the first step's 2 generate
    assert len(generated) == 2
    sampler = trainer._get_train_sampler()
    order = list(sampler)
    assert order[:2] == order[2:4]  # the sampler repeats each step's prompts num_iterations times
    for rollout in trainer._rollout_buffer.values():
        assert rollout[0].old_logps is not None and rollout[0].old_logps.shape == rollout[0].completion_ids.shape


@pytest.mark.parametrize("weighting", ["sigmoid", "softmax"])
def test_soft_weighting_trains_with_weights_in_unit_interval(weighting, tiny_model_dir, dataset_file, tmp_path):
    trainer = build_trainer(tiny_model_dir, dataset_file, tmp_path, "--ktr_weighting", weighting)
    rollouts = fresh_rollouts(trainer)
    loss = trainer.compute_loss(trainer.model, rollouts)
    loss.backward()
    for rollout in rollouts:
        weights = rollout.token_weights
        assert weights.is_floating_point() and ((weights >= 0) & (weights <= 1)).all()
        assert (weights[~rollout.completion_mask] == 0).all()
        assert len(set(weights[rollout.completion_mask].tolist())) > 2  # soft, not a 0/1 mask
    assert torch.isfinite(loss)


@pytest.mark.parametrize("in_loss", [False, True], ids=["scored_at_rollout", "scored_in_loss"])
@pytest.mark.parametrize("aggregation", AGGREGATIONS)
def test_per_prompt_losses_add_up_to_the_batch_aggregation(aggregation, in_loss, tiny_model_dir, dataset_file,
                                                          tmp_path, monkeypatch):
    """One backward per prompt must give the loss of aggregating all rows of the micro-batch at
    once, with the selection made at rollout time or in each prompt's loss forward (the
    ``*_selected`` aggregations, whose prompt shares need every selection first, fall back to
    the rollout time)."""
    import videoktr.train.trainer as trainer_module
    from videoktr.core import grpo_loss

    trainer = build_trainer(tiny_model_dir, dataset_file, tmp_path, "--loss_aggregation", aggregation,
                            "--score_in_loss_forward", str(in_loss).lower())
    rollouts = fresh_rollouts(trainer, count=3)
    assert all(rollout.scored_in_loss for rollout in rollouts) == (in_loss and not aggregation.endswith("_selected"))
    rollouts[1].completion_mask[:, 6:] = False  # prompts of different lengths
    if rollouts[2].token_weights is not None:  # selected at rollout time: make a row that selects nothing
        rollouts[2].token_weights[0] = False
    captured = []
    original = trainer_module.grpo_loss

    def capturing_loss(logps, old_logps, advantages, mask, **kwargs):
        captured.append((logps.detach(), advantages, mask, kwargs["token_weights"], kwargs["ref_logps"]))
        return original(logps, old_logps, advantages, mask, **kwargs)

    monkeypatch.setattr(trainer_module, "grpo_loss", capturing_loss)
    combined = trainer.compute_loss(trainer.model, rollouts)
    length = max(c[0].shape[1] for c in captured)

    def stack(index, fill):
        return torch.cat([torch.nn.functional.pad(c[index], (0, length - c[index].shape[1]), value=fill)
                          for c in captured])

    logps, masks, weights, refs = stack(0, 0.0), stack(2, False), stack(3, False), stack(4, 0.0)
    advantages = torch.cat([c[1] for c in captured])
    expected, _ = grpo_loss(logps, logps, advantages, masks, token_weights=weights, ref_logps=refs,
                            beta=trainer.args.beta, aggregation=aggregation,
                            max_completion_length=trainer.args.max_completion_length,
                            global_normaliser=masks.sum())  # outside a step, the micro-batch is the step
    assert combined.item() == pytest.approx(expected.item(), rel=1e-5, abs=1e-7)


@pytest.mark.parametrize(("loss_type", "spans_the_step"), [("dapo", True), ("bnpo", False)])
def test_dapo_divides_by_the_tokens_of_the_whole_accumulated_step(loss_type, spans_the_step, tiny_model_dir,
                                                                   dataset_file, tmp_path):
    """Two accumulated micro-batches of different token counts: the optimizer's gradient is the
    token mean over both for dapo (TRL's global normaliser), the mean of two token means for bnpo."""
    from tests.train.step_gradient import (
        StepRecorder,
        largest_relative_difference,
        whole_step_gradient,
    )

    trainer = build_trainer(tiny_model_dir, dataset_file, tmp_path, "--loss_type", loss_type,
                            "--per_device_train_batch_size", "1", "--gradient_accumulation_steps", "2",
                            "--max_steps", "1", "--save_steps", "10", "--max_grad_norm", "0", "--beta", "0")
    recorder = StepRecorder(trainer, lengths=[3, 12])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer.train()
    rollouts = [rollout for batch in recorder.rollouts for rollout in batch]
    assert len(recorder.rollouts) == 2 and [int(r.completion_mask.sum()) for r in rollouts][0] <= 9
    trainer.args.loss_aggregation = "token_mean"  # the reference: one token mean over the whole step
    reference = whole_step_gradient(trainer, recorder.initial_state, rollouts)
    difference = largest_relative_difference(recorder.gradient, reference)
    if spans_the_step:
        assert difference < 1e-5
    else:
        assert difference > 1e-2


def test_freeze_vision_encoder_leaves_the_encoder_unchanged(tiny_model_dir, dataset_file, tmp_path):
    trainer = build_trainer(tiny_model_dir, dataset_file, tmp_path, "--freeze_vision_encoder", "true",
                            "--max_steps", "1", "--save_steps", "10")
    before = {n: p.detach().clone() for n, p in trainer.model.named_parameters()}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer.train()
    after = dict(trainer.model.named_parameters())
    visual = [n for n in before if ".visual." in f".{n}"]
    assert visual and all(torch.equal(before[n], after[n]) for n in visual)
    assert any(not torch.equal(before[n], after[n]) for n in before if n not in visual)  # the LM moved


def test_vanilla_grpo_skips_the_scoring_pass_it_does_not_need(tiny_model_dir, dataset_file, tmp_path):
    """One update per rollout, no signals, no dump: GRPO's ratio is taken against the loss
    pass's own detached log-probs, so the rollout runs no extra pass over the completions."""
    grpo = build_trainer(tiny_model_dir, dataset_file, tmp_path / "a", "--preset", "grpo")
    rollouts = fresh_rollouts(grpo)
    assert all(rollout.old_logps is None and not rollout.scored_in_loss for rollout in rollouts)
    grpo.compute_loss(grpo.model, rollouts)
    assert all(rollout.old_logps is None for rollout in rollouts)
    # Where it needs the pass, it runs at rollout time, or in the first loss forward (the default).
    for in_loss in ("false", "true"):
        flag = ("--score_in_loss_forward", in_loss)
        dumping = build_trainer(tiny_model_dir, dataset_file, tmp_path / f"b{in_loss}", "--preset", "grpo",
                                "--rollout_dump_steps", "1", *flag)
        reused = build_trainer(tiny_model_dir, dataset_file, tmp_path / f"c{in_loss}", "--preset", "grpo",
                               "--num_iterations", "2", *flag)
        for trainer, needed in ((dumping, "gradient_weight"), (reused, "old_logps")):
            rollouts = fresh_rollouts(trainer)
            assert all(rollout.scored_in_loss == (in_loss == "true") for rollout in rollouts)
            trainer.compute_loss(trainer.model, rollouts)
            assert all(getattr(rollout, needed) is not None and not rollout.scored_in_loss for rollout in rollouts)
        assert len(list(Path(dumping.args.output_dir).glob("rollouts/*.jsonl"))) == 1


class _CallCounter:
    """Counts calls of a module's forward (a forward pre-hook)."""

    def __init__(self, module):
        self.calls = 0
        module.register_forward_pre_hook(self._count)

    def _count(self, *unused):
        self.calls += 1


@pytest.mark.parametrize("flags, saves", [
    (("--preset", "video_ktr"), True),
    (("--preset", "video_ktr", "--num_iterations", "2", "--ktr_weighting", "sigmoid"), True),
    (("--preset", "entropy_80_20"), False),  # batch scope over 2 prompts: selected at rollout time
], ids=["video_ktr", "reused_soft", "batch_scope_falls_back"])
def test_scoring_in_the_loss_forward_equals_scoring_at_rollout_time_with_one_policy_pass_less(
        flags, saves, tiny_model_dir, dataset_file, tmp_path):
    """``score_in_loss_forward`` takes the real input's log-probs, entropy and gradient weights
    from the loss's own forward: the same scores, selection, old log-probs and loss as the
    rollout-time scoring pass, with the policy's vision encoder run once per prompt instead of
    twice and the language model two calls (prompt, completions) fewer. A selection over the
    micro-batch's prompts (``ktr_scope: batch``) cannot wait for each prompt's loss forward,
    and runs at rollout time either way."""
    results = {}
    for in_loss in ("false", "true"):
        trainer = build_trainer(tiny_model_dir, dataset_file, tmp_path / in_loss, *flags, "--beta", "0.04",
                                "--score_in_loss_forward", in_loss)
        policy = trainer._unwrapped()
        encoder, language_model = _CallCounter(policy.model.visual), _CallCounter(policy.model.language_model)
        rollouts = fresh_rollouts(trainer)  # the same completions (and generation calls) either way
        losses = [trainer.compute_loss(trainer.model, rollouts).item() for _ in range(2)]
        results[in_loss] = (rollouts, losses, encoder.calls, language_model.calls)
    (at_rollout, loss_at_rollout, encoder_at_rollout, lm_at_rollout) = results["false"]
    (in_loss, loss_in_loss, encoder_in_loss, lm_in_loss) = results["true"]
    for ours, theirs in zip(in_loss, at_rollout):
        assert torch.equal(ours.completion_ids, theirs.completion_ids)
        assert ours.scores.keys() == theirs.scores.keys() and ours.scores
        for name in ours.scores:
            torch.testing.assert_close(ours.scores[name], theirs.scores[name], atol=1e-5, rtol=1e-5, equal_nan=True)
        torch.testing.assert_close(ours.old_logps, theirs.old_logps, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(ours.gradient_weight, theirs.gradient_weight, atol=1e-5, rtol=1e-5)
        assert torch.equal(ours.token_weights, theirs.token_weights) if not ours.token_weights.is_floating_point() \
            else torch.allclose(ours.token_weights, theirs.token_weights, atol=1e-5)
    assert loss_in_loss == pytest.approx(loss_at_rollout, rel=1e-4, abs=1e-6)
    prompts = len(in_loss) if saves else 0
    assert encoder_at_rollout - encoder_in_loss == prompts
    assert lm_at_rollout - lm_in_loss == 2 * prompts


def test_the_mass_rule_sets_each_groups_share_within_its_floor_and_cap(tiny_model_dir, dataset_file, tmp_path):
    """``ktr_ratio_rule: mass``: the selection comes from ``core.select_key_tokens_by_mass``
    per signal and group, so each signal's selected share lies between its floor and cap
    (up to the ceil of a small group) and varies from group to group."""
    from videoktr.core import select_key_tokens_by_mass

    trainer = build_trainer(tiny_model_dir, dataset_file, tmp_path, "--preset", "video_ktr", "--ktr_ratio_rule", "mass",
                            "--ktr_mass", "0.6", "--ktr_min_ratio", "0.1", "--ktr_max_ratio", "0.7")
    rollouts = fresh_rollouts(trainer)
    trainer.compute_loss(trainer.model, rollouts)
    for rollout in rollouts:
        mask = rollout.completion_mask
        for name, selected in rollout.signal_masks.items():
            expected = select_key_tokens_by_mass({name: rollout.scores[name]}, mask, mass=0.6, min_ratio=0.1,
                                                 max_ratio=0.7, scope="group", group_size=3)
            assert torch.equal(selected, expected), name
            share = selected.sum().item() / mask.sum().item()
            assert 0.1 <= share <= 0.7 + 1 / mask.sum().item(), (name, share)
        union = torch.stack(list(rollout.signal_masks.values())).any(0)
        assert torch.equal(rollout.token_weights, union)
    shares = trainer._metrics["selected_fraction/entropy"]
    assert len(shares) == 2 and all(0.1 <= share <= 0.75 for share in shares)
    with pytest.raises(ValueError, match="needs ktr_weighting 'hard'"):
        build_trainer(tiny_model_dir, dataset_file, tmp_path / "soft", "--ktr_ratio_rule", "mass", "--ktr_weighting",
                      "sigmoid")
    with pytest.raises(ValueError, match="ktr_ratio_rule has no effect with token_selection='none'"):
        build_trainer(tiny_model_dir, dataset_file, tmp_path / "grpo", "--preset", "grpo", "--ktr_ratio_rule", "mass")


@pytest.mark.parametrize("setting", ["encoder_chunk_groups", "prefill_chunk_tokens"])
def test_chunking_trains_as_one_call_does(tiny_model_dir, dataset_file, tmp_path, setting):
    """``encoder_chunk_groups`` (a video encoded one temporal group at a time) and
    ``prefill_chunk_tokens`` (prompts prefilled 5 tokens at a time), on the policy and the
    reference: the same rollout scores, reference log-probs, loss and gradients as one call."""
    results = []
    for chunk in (None, 1 if setting == "encoder_chunk_groups" else 5):
        flags = (f"--{setting}", str(chunk)) if chunk else ()
        trainer = build_trainer(tiny_model_dir, dataset_file, tmp_path / str(chunk), "--beta", "0.04", *flags)
        assert getattr(get_adapter(trainer.model), setting) == chunk
        assert getattr(get_adapter(trainer.ref_model), setting) == chunk
        rollouts = fresh_rollouts(trainer)
        loss = trainer.compute_loss(trainer.model, rollouts)
        loss.backward()
        grads = {name: p.grad for name, p in trainer.model.named_parameters() if p.grad is not None}
        results.append((rollouts, loss.item(), grads))
    (whole, whole_loss, whole_grads), (chunked, chunked_loss, chunked_grads) = results
    for ours, theirs in zip(chunked, whole):
        for name in ours.scores:
            torch.testing.assert_close(ours.scores[name], theirs.scores[name], atol=1e-5, rtol=1e-4, equal_nan=True)
        torch.testing.assert_close(ours.ref_logps, theirs.ref_logps, atol=1e-5, rtol=1e-4)
    assert chunked_loss == pytest.approx(whole_loss, rel=1e-4, abs=1e-6)
    assert any(".visual." in name for name in chunked_grads)
    for name, grad in whole_grads.items():  # (a parameter whose gradient is zero may get none from chunks)
        torch.testing.assert_close(chunked_grads.get(name, torch.zeros_like(grad)), grad, atol=1e-5, rtol=1e-4)
