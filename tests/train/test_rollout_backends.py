"""The trainer with a sampler other than the policy: the sampler's log-probs become truncated
importance weights, and with the trainer's own log-probs the loss is the hf backend's; with the
policy's scoring at rollout time and inside the loss forward (``score_in_loss_forward``)."""

import math
import warnings

import pytest
import torch

from videoktr.models import get_adapter
from videoktr.rollout import HFRolloutBackend, SampledCompletions

from .test_trainer import build_trainer


class EchoingSampler:
    """Samples as the policy does, and reports the trainer's own log-probs shifted by ``shift``:
    a stand-in for an engine whose numerics differ from the trainer's by a known amount."""

    name = "stand-in"
    needs_weights = False
    weights_version = None

    def __init__(self, trainer, shift: float = 0.0):
        self.trainer = trainer
        self.shift = shift
        self.policy_sampler = HFRolloutBackend(trainer._unwrapped, trainer.processing_class)

    def describe(self):
        return "rollouts: a stand-in engine"

    def sample(self, requests, settings):
        sampled = self.policy_sampler.sample(requests, settings)
        out = []
        for request, completions in zip(requests, sampled):
            out.append(SampledCompletions(completions.completion_ids, completions.completion_mask,
                                          self._trainer_logps(request, completions) + self.shift))
        return out

    @torch.no_grad()
    def _trainer_logps(self, request, completions):
        """The log-probs the trainer's own pass will give: its scoring pass at rollout time, or
        its loss forward (``score_in_loss_forward``)."""
        trainer = self.trainer
        if trainer.args.score_in_loss_forward:
            adapter = get_adapter(trainer._unwrapped())
            logps = adapter.policy_logps(trainer.model, adapter.prepare(request.prompt_inputs),
                                         completions.completion_ids, chunk_size=trainer.args.attribution_chunk_size)
            return logps.masked_fill(~completions.completion_mask, 0.0)
        scorer = trainer._attributor(trainer._unwrapped(), (), request.seed)
        return scorer.score(request.prompt_inputs, completions.completion_ids, completions.completion_mask)["logps"]

    def sync_weights(self, model, step, state_dict=None):
        return None

    def close(self):
        pass


def _loss(trainer, rollouts):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return trainer.compute_loss(trainer.model, rollouts).item()


def _rollouts(trainer):
    """One micro-batch's rollouts, from a fresh count of metrics (the importance weights and
    their metrics come at rollout time or in the first loss forward: read them after ``_loss``)."""
    trainer._metrics.clear()
    trainer._micro_step = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rollouts = trainer._prepare_inputs([trainer.train_dataset[i] for i in range(2)])
    for rollout in rollouts:  # fixed, nonzero advantages: the comparison must not hinge on sampled rewards
        rollout.advantages = torch.tensor([1.0, -0.5, 0.25])
    return rollouts


IN_LOSS = pytest.mark.parametrize("in_loss", ["true", "false"], ids=["scored_in_loss", "scored_at_rollout"])


@IN_LOSS
@pytest.mark.parametrize("preset", ["video_ktr", "grpo"])
def test_identical_logprobs_give_the_hf_backends_loss(preset, in_loss, tiny_model_dir, dataset_file, tmp_path):
    trainer = build_trainer(tiny_model_dir, dataset_file, tmp_path, "--preset", preset, "--beta", "0.04",
                            "--score_in_loss_forward", in_loss)
    reference = _rollouts(trainer)
    reference_loss = _loss(trainer, reference)
    trainer.rollout_backend = EchoingSampler(trainer)
    echoed = _rollouts(trainer)
    echoed_loss = _loss(trainer, echoed)
    for ours, theirs in zip(echoed, reference):  # same seeds: the same completions
        assert torch.equal(ours.completion_ids, theirs.completion_ids)
        assert ours.importance_weights is not None
        assert torch.equal(ours.importance_weights[ours.completion_mask],
                           torch.ones(int(ours.completion_mask.sum())))
    assert trainer._metrics["rollout/logp_mismatch_max"] == [0.0, 0.0]
    assert trainer._metrics["rollout/truncated_share"] == [0.0, 0.0]
    assert echoed_loss == reference_loss


@IN_LOSS
def test_a_sampler_mismatch_weights_the_policy_term_and_is_logged(in_loss, tiny_model_dir, dataset_file, tmp_path):
    trainer = build_trainer(tiny_model_dir, dataset_file, tmp_path, "--preset", "grpo", "--beta", "0",
                            "--loss_aggregation", "token_mean", "--score_in_loss_forward", in_loss)
    reference_loss = _loss(trainer, _rollouts(trainer))
    # The engine gave every token 0.1 nats less than the trainer: each weight is exp(0.1) < cap.
    trainer.rollout_backend = EchoingSampler(trainer, shift=-0.1)
    shifted = _rollouts(trainer)
    assert _loss(trainer, shifted) == pytest.approx(math.exp(0.1) * reference_loss, rel=1e-5)
    assert trainer._metrics["rollout/logp_mismatch_mean"] == pytest.approx([0.1, 0.1])
    # Far off: every weight is truncated to the cap.
    trainer.rollout_backend = EchoingSampler(trainer, shift=-5.0)
    truncated = _rollouts(trainer)
    assert _loss(trainer, truncated) == pytest.approx(2.0 * reference_loss, rel=1e-5)
    assert trainer._metrics["rollout/truncated_share"] == [1.0, 1.0]
    # With the correction off the mismatch is still logged, and the loss is the uncorrected one.
    trainer.args.vllm_importance_sampling_correction = False
    uncorrected = _rollouts(trainer)
    assert _loss(trainer, uncorrected) == pytest.approx(reference_loss, rel=1e-5)
    assert all(rollout.importance_weights is None for rollout in uncorrected)
    assert trainer._metrics["rollout/truncated_share"] == [1.0, 1.0]
