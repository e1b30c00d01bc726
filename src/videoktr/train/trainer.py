"""VideoGRPOTrainer: GRPO for video LLMs on transformers.Trainer, with key-token reinforcement.

One optimizer step, per prompt on each process:

    rollout      G completions per prompt, the micro-batch's prompts sampled together by the
                 rollout backend (``rollout``: the policy's own ``generate``, or a vLLM server
                 whose weights are the policy's, synced before each step's first rollout)
    reward       every reward function on every completion; T-GRPO's bonus if enabled
    advantage    group-relative: (r - mean_group r) / (std_group r + eps)
    attribution  ``KeyTokenAttributor``: real log-probs (the old log-probs), and the visual,
                 temporal and entropy scores the token selection needs; by default inside each
                 prompt's first loss forward, which gives the real log-probs anyway
                 (``score_in_loss_forward``: only the counterfactual passes run beside it)
    selection    the key-token mask (or soft weights) over the micro-batch (then per prompt)
    loss         clipped GRPO on key tokens (``core.grpo_loss``), one backward per prompt; with
                 vLLM rollouts each token's term is weighted by the truncated sampler-to-trainer
                 ratio (``core.importance``)

Each prompt's results travel between these phases as one typed ``data.rollouts.PromptRollout``,
which the rollout dump (``rollout_dump_steps``) also writes from.

Everything the Trainer already does — optimizer, scheduler, gradient accumulation,
checkpointing and resuming, logging to ``report_to``, DeepSpeed/FSDP through accelerate —
stays the Trainer's.

Under FSDP2 (accelerate's ``fsdp_version: 2``) the model adapter runs every pass through the
root forward (see ``models/base.py``) and every process runs the same passes per prompt, so
FSDP's collectives stay paired across processes. Generation needs nothing of ours: ``fully_shard``
marks the modules it manages, transformers' ``generate`` then steps with ``synced_gpus`` (a process
whose completions ended keeps running forwards until all have), and the Trainer registers
``generate`` as an FSDP forward method (the root's weights stay gathered while it runs).
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import time
from collections import defaultdict
from collections.abc import Sequence

import torch
from torch.utils.data import Sampler
from transformers import Trainer

from ..attribution import KeyTokenAttributor
from ..core.advantages import group_advantages
from ..core.diagnostics import gradient_share
from ..core.importance import truncated_importance_weights
from ..core.losses import aggregation_normaliser, grpo_loss
from ..core.permutations import sample_derangements
from ..core.selection import select_key_tokens, select_key_tokens_by_mass, soft_token_weights
from ..data.dataset import Sample, VideoR1Dataset
from ..data.prompts import build_prompt_inputs
from ..data.rollouts import PromptRollout, dump_path, write_rollout_dump
from ..data.video import DecodedVideo
from ..models import (
    add_lora,
    get_adapter,
    is_peft_model,
    reference_mode,
    set_encoder_chunking,
    set_prefill_chunking,
    vision_parameters,
)
from ..rewards import compute_rewards, load_reward_function
from ..rollout import (
    HFRolloutBackend,
    RolloutRequest,
    SampledCompletions,
    SamplingSettings,
    VLLMRolloutBackend,
)
from .checkpoints import CheckpointMixin
from .config import ConfigError, VideoGRPOConfig, check_fsdp_plugin
from .guards import NonFiniteUpdateGuard
from .sampler import RepeatBatchSampler, identity_collate


def _set_chunking(model: torch.nn.Module, args: VideoGRPOConfig) -> None:
    """The long-video settings on a model the trainer runs (policy and reference alike)."""
    set_encoder_chunking(model, args.encoder_chunk_groups)
    set_prefill_chunking(model, args.prefill_chunk_tokens)


class VideoGRPOTrainer(CheckpointMixin, Trainer):
    """GRPO with key-token reinforcement for Qwen2-VL, Qwen2.5-VL and Qwen3-VL.

    Args:
        model: the policy (a loaded ``...ForConditionalGeneration``).
        args: a ``VideoGRPOConfig``.
        train_dataset: a ``VideoR1Dataset``.
        processing_class: the model's processor.
        ref_model: the frozen reference for the KL term; defaults to a copy of ``model`` taken
            at construction when ``args.beta > 0``.
        callbacks: extra ``TrainerCallback``s.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        args: VideoGRPOConfig,
        train_dataset: VideoR1Dataset,
        processing_class,
        ref_model: torch.nn.Module | None = None,
        callbacks=None,
    ) -> None:
        if not isinstance(args, VideoGRPOConfig):
            raise ConfigError("args must be a VideoGRPOConfig (see videoktr.train.load_config)")
        get_adapter(model)  # fails early, naming the supported families
        if args.use_peft and not is_peft_model(model):
            with torch.random.fork_rng(devices=[]):  # the adapters' initialisation follows the run's seed alone
                torch.manual_seed(args.seed)
                model = add_lora(model, r=args.lora_r, alpha=args.lora_alpha, dropout=args.lora_dropout,
                                 target_modules=args.lora_target_modules)
        self.reward_functions = {name: load_reward_function(name) for name in args.reward_funcs}
        self.reward_weights = args.reward_weights
        if args.freeze_vision_encoder:  # before the reference copy and the optimizer see the flags
            for parameter in vision_parameters(model):
                parameter.requires_grad_(False)
        _set_chunking(model, args)  # before the reference copy inherits it
        # With LoRA the reference is the policy with its adapters off (_reference_logps): no copy.
        if ref_model is None and args.beta > 0 and not is_peft_model(model):
            ref_model = copy.deepcopy(model)
        if ref_model is not None:
            _set_chunking(ref_model, args)
            ref_model.eval().requires_grad_(False)
        super().__init__(
            model=model,
            args=args,
            train_dataset=train_dataset,
            processing_class=processing_class,
            data_collator=identity_collate,
            callbacks=callbacks,
        )
        if self.is_fsdp_enabled:
            check_fsdp_plugin(self.accelerator.state.fsdp_plugin)
        if self.is_deepspeed_enabled:
            if args.per_device_train_batch_size != 1:
                raise ConfigError(
                    "per_device_train_batch_size must be 1 under DeepSpeed (one prompt, i.e. one "
                    "forward, per backward); scale the batch with gradient_accumulation_steps"
                )
        self.ref_model = None
        if ref_model is not None:
            if self.is_deepspeed_enabled:
                self.ref_model = self.accelerator.prepare_model(ref_model, evaluation_mode=True)
            else:
                self.ref_model = ref_model.to(self.accelerator.device)  # under FSDP too: a full, unsharded copy
        self._metrics: dict[str, list[float]] = defaultdict(list)
        self._rollout_buffer: dict[int, list[PromptRollout]] = {}
        self._micro_step = 0
        self._step_tokens: float | None = None
        self._in_loss_scoring_s = 0.0  # this training step's scoring inside loss forwards (_loss_forward_with_scoring)
        self.update_guard = NonFiniteUpdateGuard(self.accelerator)
        self.rollout_backend = self._make_rollout_backend()

    def _make_rollout_backend(self):
        """The configured sampler: the policy itself (``hf``) or a vLLM rollout server."""
        args = self.args
        if args.rollout_backend == "hf":
            return HFRolloutBackend(self._unwrapped, self.processing_class, self.accelerator.device)
        return VLLMRolloutBackend.for_model(
            self._unwrapped(),
            self.processing_class,
            pixels=args.pixel_budget,
            host=args.vllm_server_host,
            port=args.vllm_server_port,
            timeout=args.vllm_server_timeout,
            weight_sync=args.vllm_weight_sync,
            weights_dir=f"{args.output_dir}/rollout_weights",
            device=self.accelerator.device,
            is_main_process=self.accelerator.is_main_process,
            wait_for_everyone=self.accelerator.wait_for_everyone,
        )

    def _sync_rollout_weights(self) -> None:
        """Before a step's first rollout: the sampler takes the policy's current weights (a no-op
        when the policy samples itself). The log key names the path the weights took."""
        backend = self.rollout_backend
        step = self.state.global_step
        if not backend.needs_weights or backend.weights_version == step:
            return
        # Under FSDP / ZeRO-3 the full weights are gathered on every process (a collective).
        state_dict = self.accelerator.get_state_dict(self.model) if (self.is_fsdp_enabled or self.is_deepspeed_enabled) else None
        path = backend.sync_weights(self._unwrapped(), step, state_dict=state_dict)
        self._metrics[f"time/weight_sync_{path}_s"].append(backend.last_sync_s)

    def create_optimizer(self, model=None):
        """The Trainer's optimizer, with ``NonFiniteUpdateGuard`` as its step pre-hook."""
        optimizer = super().create_optimizer(model)
        if not getattr(optimizer, "_videoktr_guarded", False):
            optimizer.register_step_pre_hook(self.update_guard)
            optimizer._videoktr_guarded = True
        return optimizer

    # ------------------------------------------------------------------ data

    def _get_train_sampler(self, train_dataset=None) -> Sampler:
        args = self.args
        chunk = args.per_device_train_batch_size * args.gradient_accumulation_steps * self.accelerator.num_processes
        dataset = train_dataset if train_dataset is not None else self.train_dataset
        return RepeatBatchSampler(len(dataset), chunk, args.num_iterations, seed=args.seed)

    # ------------------------------------------------------------------ rollouts

    def _unwrapped(self) -> torch.nn.Module:
        return self.accelerator.unwrap_model(self.model)

    def _prompt_seed(self, slot: int) -> int:
        # Distinct per step, process and prompt, and reproducible on resume.
        return hash((self.args.seed, self.state.global_step, self.accelerator.process_index, slot)) % (2**63)

    def _attributor(self, model, signals: Sequence[str], seed: int, gradient_weight: bool = False
                    ) -> KeyTokenAttributor:
        args = self.args
        return KeyTokenAttributor(
            model,
            self.processing_class,
            visual_mode=args.visual_mode,
            temporal_mode=args.temporal_mode,
            num_shuffles=args.num_shuffles,
            seed=seed,
            signals=signals,
            signed=args.ktr_delta == "signed",
            chunk_size=args.attribution_chunk_size,
            temperature=args.temperature,
            gradient_weight=gradient_weight,
        )

    def _temporal_bonus(self, sample, media, accuracy: torch.Tensor, seed: int) -> torch.Tensor:
        """T-GRPO: completions on shuffled frames; a bonus for correct completions when the
        ordered group is at least ``threshold`` times as accurate as the shuffled one."""
        args = self.args
        settings = dataclasses.replace(self._sampling_settings(), num_generations=max(args.num_generations // 2, 1))
        if not isinstance(media, DecodedVideo) or media.frames.shape[0] < 2:
            # FSDP / ZeRO-3 (the adapter's lockstep): the other processes generate with the
            # policy, so this one steps with them.
            if self.rollout_backend.name == "hf" and get_adapter(self._unwrapped()).lockstep:
                inputs = build_prompt_inputs(self.processing_class, sample, media, args.pixel_budget)
                self.rollout_backend.sample([RolloutRequest(sample, media, inputs, seed + 1)], settings)
            return torch.zeros_like(accuracy)
        order = sample_derangements(media.frames.shape[0], generator=torch.Generator().manual_seed(seed))[0]
        shuffled = dataclasses.replace(media, frames=media.frames[order])
        inputs = build_prompt_inputs(self.processing_class, sample, shuffled, args.pixel_budget)
        (completions,) = self.rollout_backend.sample([RolloutRequest(sample, shuffled, inputs, seed + 1)], settings)
        texts = self._decode_texts(completions.completion_ids, completions.completion_mask)
        _, per_function = compute_rewards(texts, [sample.row] * len(texts), {"accuracy": self.reward_functions["accuracy"]})
        shuffled_accuracy = per_function["accuracy"].mean()
        applies = bool(accuracy.mean() >= args.temporal_bonus_threshold * shuffled_accuracy)
        self._metrics["temporal_bonus_applied"].append(float(applies))
        if not applies:
            return torch.zeros_like(accuracy)
        return (accuracy > 0.1).float() * args.temporal_bonus

    def _sampling_settings(self) -> SamplingSettings:
        args = self.args
        return SamplingSettings(args.num_generations, args.max_completion_length, args.temperature, args.top_p)

    def _decode_texts(self, completion_ids: torch.Tensor, completion_mask: torch.Tensor) -> list[str]:
        tokenizer = self.processing_class.tokenizer
        return [
            tokenizer.decode(ids[mask].tolist(), skip_special_tokens=True)
            for ids, mask in zip(completion_ids.cpu(), completion_mask.cpu())
        ]

    def _usable_sample(self, sample: Sample):
        """``(sample, media, prompt_inputs)`` of ``sample``, or of the next usable sample when its
        media cannot be decoded or its prompt is longer than ``max_prompt_length`` (either is
        skipped and counted, as any bad sample)."""
        args, dataset = self.args, self.train_dataset
        while True:
            sample, media = dataset.load_or_replace(sample, args.fps, args.min_frames, args.max_frames)
            prompt_inputs = build_prompt_inputs(self.processing_class, sample, media, args.pixel_budget)
            length = int(prompt_inputs["input_ids"].shape[1])
            if args.max_prompt_length is None or length <= args.max_prompt_length:
                return sample, media, prompt_inputs
            dataset.reject(sample, f"the prompt has {length} tokens (video included), more than "
                                   f"max_prompt_length={args.max_prompt_length}; lower max_frames or the pixel budget (max_pixels, video_max_pixels)")

    @torch.no_grad()
    def _rollouts(self, samples: Sequence[Sample], first_slot: int) -> list[PromptRollout]:
        """The micro-batch's rollouts: its prompts sampled in one backend call, then each
        prompt's rewards and attribution. Sampling is seeded per (seed, step, process, prompt),
        independent of the global RNG that data loading also draws from, so rollouts are
        reproducible, and identical after a resume."""
        requests = []
        for index, sample in enumerate(samples):
            sample, media, prompt_inputs = self._usable_sample(sample)
            requests.append(RolloutRequest(sample, media, prompt_inputs, self._prompt_seed(first_slot + index)))
        start = time.perf_counter()
        sampled = self.rollout_backend.sample(requests, self._sampling_settings())
        generation_s = (time.perf_counter() - start) / len(requests)  # per prompt, as the other phases
        in_loss = self._scores_in_loss(len(requests))
        return [self._score(request, completions, generation_s, in_loss)
                for request, completions in zip(requests, sampled)]

    def _scores_in_loss(self, num_prompts: int) -> bool:
        """Whether the policy's scoring of a rollout (its old log-probs, entropy and gradient
        weights, the counterfactual passes, the importance weights and the selection) waits
        for the rollout's first loss forward, which gives the real input's log-probs anyway:
        one forward of the policy less per prompt (``score_in_loss_forward``).

        Not when the selection or the prompts' loss shares span a micro-batch of several
        prompts (``ktr_scope: batch``, a ``*_selected`` aggregation): every prompt's selection is
        then needed before the first backward. Not under FSDP / ZeRO-3 either, whose passes all
        run through the root forward in lockstep (``models/root_forward.py``)."""
        args = self.args
        if not args.score_in_loss_forward or get_adapter(self._unwrapped()).lockstep:
            return False
        spans_prompts = args.ktr_scope == "batch" or args.loss_aggregation.endswith("_selected")
        return num_prompts == 1 or args.token_selection == "none" or not spans_prompts

    def _score(self, request: RolloutRequest, sampled: SampledCompletions, generation_s: float,
               in_loss: bool = False) -> PromptRollout:
        """One prompt's rewards, advantages and attribution (old log-probs, signal scores), and
        with a separate sampler its truncated importance weights. With ``in_loss`` the policy's
        scoring is left to the loss forward (``_loss_forward_with_scoring``); the reference pass runs here."""
        args = self.args
        sample, media, prompt_inputs, seed = request.sample, request.media, request.prompt_inputs, request.seed
        device = self.accelerator.device
        completion_ids, completion_mask = sampled.completion_ids.to(device), sampled.completion_mask.to(device)
        start = time.perf_counter()
        texts = self._decode_texts(completion_ids, completion_mask)
        rewards, per_function = compute_rewards(
            texts, [sample.row] * len(texts), self.reward_functions, self.reward_weights
        )
        if args.temporal_reward_bonus:
            accuracy = per_function.get("accuracy")
            if accuracy is None:
                raise ConfigError("temporal_reward_bonus needs the 'accuracy' reward in reward_funcs")
            bonus = self._temporal_bonus(sample, media, accuracy, seed)
            rewards = rewards + bonus
            per_function["temporal_bonus"] = bonus
        reward_s = time.perf_counter() - start

        start = time.perf_counter()
        scores = {"logps": None, "gradient_weight": None}
        needs_scoring = self._needs_scoring_pass(sampled)
        if needs_scoring and not in_loss:
            scores = self._policy_attributor(seed).score(prompt_inputs, completion_ids, completion_mask)
        ref_logps = self._reference_logps(prompt_inputs, completion_ids, completion_mask, seed)
        attribution_s = time.perf_counter() - start

        old_logps = scores.pop("logps")
        rollout = PromptRollout(
            sample=sample,
            prompt_inputs=prompt_inputs,
            completion_ids=completion_ids,
            completion_mask=completion_mask,
            texts=texts,
            rewards=rewards.to(device),
            rewards_per_function=per_function,
            advantages=group_advantages(rewards, args.num_generations, scale=args.scale_rewards).to(device),
            old_logps=old_logps,
            gradient_weight=scores.pop("gradient_weight"),
            ref_logps=ref_logps,
            scores={name: value for name, value in scores.items() if name != "permutation"},
            timing={"generation_s": generation_s, "reward_s": reward_s, "attribution_s": attribution_s},
            sampler_logps=sampled.sampler_logps,
            seed=seed,
            scored_in_loss=needs_scoring and in_loss,
        )
        if old_logps is not None:
            self._set_importance_weights(rollout)
        return rollout

    def _reference_logps(self, prompt_inputs, completion_ids, completion_mask, seed: int) -> torch.Tensor | None:
        """The KL term's reference log-probs: the reference model's, or with LoRA the policy's
        own with its adapters off; None without a KL term."""
        if self.ref_model is not None:
            reference = self._attributor(self.accelerator.unwrap_model(self.ref_model), (), seed)
            return reference.score(prompt_inputs, completion_ids, completion_mask)["logps"]
        policy = self._unwrapped()
        if self.args.beta > 0 and is_peft_model(policy):
            with reference_mode(policy):
                return self._attributor(policy, (), seed).score(prompt_inputs, completion_ids, completion_mask)["logps"]
        return None

    def _policy_attributor(self, seed: int) -> KeyTokenAttributor:
        """The policy's attributor for one prompt: the selected signals (none for vanilla GRPO,
        which needs only the real log-probs), with gradient weights for the diagnostics."""
        args = self.args
        signals = args.selected_signals if args.token_selection != "none" else ()
        return self._attributor(self._unwrapped(), signals, seed, gradient_weight=True)

    def _set_importance_weights(self, rollout: PromptRollout) -> None:
        """With a separate sampler: the truncated sampler-to-trainer ratios of the rollout's
        tokens (``core.importance``), and their mismatch metrics."""
        if rollout.sampler_logps is None:
            return
        args = self.args
        weights, mismatch = truncated_importance_weights(
            rollout.old_logps, rollout.sampler_logps.to(rollout.old_logps.device), rollout.completion_mask,
            cap=args.vllm_importance_sampling_cap,
        )
        for name, value in mismatch.items():
            self._metrics[f"rollout/{name}"].append(value.item())
        if args.vllm_importance_sampling_correction:
            rollout.importance_weights = weights

    def _loss_forward_with_scoring(self, model, rollout: PromptRollout, prompt, share_prefix: bool):
        """The loss forward of a rollout left for it (``_scores_in_loss``), which completes the
        rollout: the vision encoder first (with gradient where it trains), the counterfactual
        passes on its detached output while only the encoder's activations are held, then the
        language model's pass with the entropy and gradient weights beside the log-probs, then
        what the rollout phase would have done (old log-probs, importance weights, selection,
        logs, dump). Returns the pass's ``TokenLogStats``."""
        args = self.args
        adapter = get_adapter(self._unwrapped())
        attributor = self._policy_attributor(rollout.seed)
        features = adapter.encode(prompt)
        start = time.perf_counter()
        detached = {key: adapter.map_features(output, torch.Tensor.detach) for key, output in features.items()}
        counterfactuals = attributor.counterfactual_logps(
            rollout.prompt_inputs, rollout.completion_ids, rollout.completion_mask, detached
        )
        scoring_s = time.perf_counter() - start
        real = adapter.policy_log_stats(
            model, prompt, rollout.completion_ids, chunk_size=args.attribution_chunk_size,
            temperature=args.temperature, share_prefix=share_prefix, features=features,
            with_entropy="entropy" in attributor.signals, with_gradient_weight=True,
        )
        start = time.perf_counter()
        scores = attributor.score_from_real(real, counterfactuals, rollout.completion_mask)
        rollout.old_logps = scores.pop("logps")
        rollout.gradient_weight = scores.pop("gradient_weight")
        rollout.scores = {name: value for name, value in scores.items() if name != "permutation"}
        rollout.scored_in_loss = False
        self._set_importance_weights(rollout)
        self._select([rollout])
        scoring_s += time.perf_counter() - start
        rollout.timing["attribution_s"] += scoring_s
        self._in_loss_scoring_s += scoring_s
        self._log_rollouts([rollout])
        self._dump_rollouts([rollout])
        return real

    def _needs_scoring_pass(self, sampled: SampledCompletions) -> bool:
        """Whether the rollout needs the policy's scoring of its completions: for the signals,
        for old log-probs (reused rollouts, or a sampler other than the policy), or for this
        step's rollout dump (gradient weights). Vanilla GRPO with one update per rollout needs
        none of them (its ratio is taken against the loss pass's own detached log-probs, as TRL
        does), and skips it. Where it is needed it runs at rollout time, or inside the loss
        forward (``_scores_in_loss``)."""
        args = self.args
        return (args.token_selection != "none" or args.num_iterations > 1 or sampled.sampler_logps is not None
                or self._dumps_this_step())

    def _select(self, rollouts: list[PromptRollout]) -> None:
        """Key-token masks or soft weights over the micro-batch (``batch`` scope spans its prompts)."""
        args = self.args
        if args.token_selection == "none":
            self._metrics["grad_share/unselected"].append(0.0)  # every token is trained
            return
        length = max(rollout.length for rollout in rollouts)

        def stack(tensors):
            return torch.cat([torch.nn.functional.pad(t, (0, length - t.shape[1])) for t in tensors])

        mask = stack([rollout.completion_mask for rollout in rollouts])
        scores = {name: stack([rollout.scores[name] for rollout in rollouts]) for name in args.selected_signals}
        ratio = args.ktr_ratio
        if isinstance(ratio, dict):
            ratio = {name: ratio[name] for name in scores}
        def select(name: str) -> torch.Tensor:
            if args.ktr_ratio_rule == "mass":  # each unit's share from its own score mass
                return select_key_tokens_by_mass(
                    {name: scores[name]}, mask, mass=args.ktr_mass, min_ratio=args.ktr_min_ratio,
                    max_ratio=args.ktr_max_ratio, scope=args.ktr_scope, group_size=args.num_generations,
                )
            return select_key_tokens(
                {name: scores[name]}, mask, ratio=ratio[name] if isinstance(ratio, dict) else ratio,
                scope=args.ktr_scope, group_size=args.num_generations, method=args.ktr_method,
            )

        # Each signal's own selection (for the metrics and dumps); their union is the hard mask.
        per_signal = {name: select(name) for name in scores}
        if args.ktr_weighting == "hard":
            weights = torch.stack(list(per_signal.values())).any(0)
        else:
            weights = soft_token_weights(
                scores, mask, weighting=args.ktr_weighting, ratio=ratio, scope=args.ktr_scope,
                group_size=args.num_generations, temperature=args.ktr_temperature,
            )
        self._log_selection(mask, weights, per_signal)
        if all(rollout.gradient_weight is not None for rollout in rollouts):
            gradient_weight = stack([rollout.gradient_weight for rollout in rollouts])
            advantages = torch.cat([rollout.advantages for rollout in rollouts]).to(gradient_weight.device)
            self._log_gradient_shares(advantages, gradient_weight, mask, weights, per_signal)
        for index, rollout in enumerate(rollouts):
            rows = slice(index * args.num_generations, (index + 1) * args.num_generations)
            rollout.token_weights = weights[rows, : rollout.length]
            rollout.signal_masks = {name: selected[rows, : rollout.length] for name, selected in per_signal.items()}

    def _log_selection(self, mask, weights, per_signal) -> None:
        tokens = mask.sum().clamp(min=1).float()
        self._metrics["selected_fraction/union"].append(((weights != 0) & mask).sum().item() / tokens.item())
        for name, selected in per_signal.items():
            self._metrics[f"selected_fraction/{name}"].append(selected.sum().item() / tokens.item())
        names = sorted(per_signal)
        for i, first in enumerate(names):
            for second in names[i + 1 :]:
                both = (per_signal[first] & per_signal[second]).sum().item()
                either = (per_signal[first] | per_signal[second]).sum().item()
                self._metrics[f"overlap/{first}_{second}"].append(both / either if either else 0.0)

    def _log_gradient_shares(self, advantages, gradient_weight, mask, weights, per_signal) -> None:
        """``grad_share/unselected``: the share of the update's squared norm (``sum A^2 g``,
        ``core.gradient_share``) on the tokens the mask drops (weight 0); ``grad_share/<signal>``:
        on the tokens each signal selects."""
        dropped = (weights == 0) & mask
        self._metrics["grad_share/unselected"].append(gradient_share(advantages, gradient_weight, dropped, mask).item())
        for name, selected in per_signal.items():
            self._metrics[f"grad_share/{name}"].append(gradient_share(advantages, gradient_weight, selected, mask).item())

    def _log_rollouts(self, rollouts: list[PromptRollout]) -> None:
        for rollout in rollouts:
            self._metrics["reward"].append(rollout.rewards.mean().item())
            self._metrics["reward_std"].append(rollout.rewards.std().item())
            for name, values in rollout.rewards_per_function.items():
                self._metrics[f"rewards/{name}"].append(values.mean().item())
            self._metrics["completion_length"].append(rollout.completion_mask.sum(1).float().mean().item())
            for name, seconds in rollout.timing.items():
                self._metrics[f"time/{name}"].append(seconds)
        dataset = self.train_dataset
        self._metrics["skipped_samples"].append(float(dataset.num_skipped_rows + len(dataset.unreadable)))
        self._metrics["skipped_updates"].append(float(self.update_guard.skipped))

    def _prepare_inputs(self, samples: list[Sample]) -> list[PromptRollout]:
        """Rollouts for this micro-batch: fresh every ``num_iterations`` steps, else reused."""
        args = self.args
        slot = self._micro_step % args.gradient_accumulation_steps
        iteration = (self._micro_step // args.gradient_accumulation_steps) % args.num_iterations
        self._micro_step += 1
        if iteration == 0 or slot not in self._rollout_buffer:
            self._sync_rollout_weights()
            rollouts = self._rollouts(samples, slot * len(samples))
            if not any(rollout.scored_in_loss for rollout in rollouts):  # else each prompt's loss forward does it
                self._select(rollouts)
                self._log_rollouts(rollouts)
                self._dump_rollouts(rollouts)
            self._rollout_buffer[slot] = rollouts
        return self._rollout_buffer[slot]

    # ------------------------------------------------------------------ loss

    def get_batch_samples(self, epoch_iterator, num_batches, device):
        """The optimizer step's micro-batches, each as its rollouts, all sampled before the step's
        first backward (as TRL samples its generation batch first): ``token_mean_global`` (TRL's
        ``dapo``) divides by the completion tokens of the whole step on every process."""
        batches, _ = super().get_batch_samples(epoch_iterator, num_batches, device)
        rollouts = [self._prepare_inputs(samples) for samples in batches]
        self._step_tokens = self._completion_tokens([r for batch in rollouts for r in batch], across_processes=True)
        return rollouts, None

    def _completion_tokens(self, rollouts: list[PromptRollout], across_processes: bool) -> float | None:
        """The completion tokens of ``rollouts`` (on every process), where the aggregation needs them."""
        if self.args.loss_aggregation != "token_mean_global":
            return None
        count = sum(float(rollout.completion_mask.sum()) for rollout in rollouts)
        if across_processes and self.accelerator.num_processes > 1:
            total = torch.tensor(count, dtype=torch.float64, device=self.accelerator.device)
            count = float(self.accelerator.reduce(total, reduction="sum"))
        return count

    def _as_rollouts(self, inputs: list) -> list[PromptRollout]:
        return self._prepare_inputs(inputs) if inputs and isinstance(inputs[0], Sample) else inputs

    def training_step(self, model, inputs, num_items_in_batch=None) -> torch.Tensor:
        """One backward per prompt (one wrapped forward each); DDP syncs on the last."""
        model.train()
        if inputs and isinstance(inputs[0], Sample):  # called outside the Trainer's loop: one micro-batch a step
            inputs = self._prepare_inputs(inputs)
            self._step_tokens = self._completion_tokens(inputs, across_processes=True)
        rollouts = inputs
        start = time.perf_counter()
        self._in_loss_scoring_s = 0.0
        shares = self._prompt_shares(rollouts)
        loss_sum = torch.zeros((), device=self.accelerator.device)
        for index, rollout in enumerate(rollouts):
            last = index == len(rollouts) - 1
            sync = contextlib.nullcontext() if last else self.accelerator.no_sync(model)
            with sync, self.compute_loss_context_manager():
                loss = self._prompt_loss(model, rollout, self._step_tokens) * shares[index]
                loss = loss * self._micro_batch_scale()
                kwargs = {"scale_wrt_gas": False} if self.is_deepspeed_enabled else {}
                self.update_guard.record_loss(loss)
                self.accelerator.backward(loss, **kwargs)
            loss_sum += loss.detach()
        # Scoring done inside the loss forward counts as attribution (see _loss_forward_with_scoring).
        self._metrics["time/loss_s"].append(time.perf_counter() - start - self._in_loss_scoring_s)
        return loss_sum

    def _micro_batch_scale(self) -> float:
        """What a micro-batch's loss is multiplied by so that the optimizer step's gradient is the
        aggregation the config names: 1 / accumulation steps for the per-micro-batch means (TRL
        divides its grpo, bnpo and dr_grpo the same way); for ``token_mean_global``, whose
        normaliser already spans the step, the process count, since DDP averages processes."""
        if self.args.loss_aggregation == "token_mean_global":
            return float(self.accelerator.num_processes)
        return 1.0 / self.current_gradient_accumulation_steps

    def _prompt_shares(self, rollouts: list[PromptRollout]) -> list[float]:
        """Each prompt's share of the micro-batch loss: its aggregation normaliser over the
        total (``core.aggregation_normaliser``), so the weighted per-prompt losses equal the
        aggregation over all rows at once. ``token_mean_global`` divides every prompt by the
        same step-wide count already, so its prompts simply add up."""
        if self.args.loss_aggregation == "token_mean_global":
            return [1.0] * len(rollouts)
        normalisers = [
            float(aggregation_normaliser(rollout.loss_weights(), rollout.completion_mask, self.args.loss_aggregation,
                                         max_completion_length=self.args.max_completion_length))
            for rollout in rollouts
        ]
        total = sum(normalisers) or 1.0
        return [value / total for value in normalisers]

    def _prompt_loss(self, model, rollout: PromptRollout, step_tokens: float | None = None) -> torch.Tensor:
        args = self.args
        adapter = get_adapter(self._unwrapped())
        prompt = adapter.prepare(rollout.prompt_inputs)
        share_prefix = not self._activation_checkpointing()
        if rollout.scored_in_loss:
            logps = self._loss_forward_with_scoring(model, rollout, prompt, share_prefix).logps
        else:
            logps = adapter.policy_logps(model, prompt, rollout.completion_ids, chunk_size=args.attribution_chunk_size,
                                         temperature=args.temperature, share_prefix=share_prefix)
        old_logps = rollout.old_logps if args.num_iterations > 1 else logps.detach()
        loss, metrics = grpo_loss(
            logps, old_logps, rollout.advantages, rollout.completion_mask,
            token_weights=rollout.token_weights, ref_logps=rollout.ref_logps, beta=args.beta,
            epsilon_low=args.epsilon, epsilon_high=args.epsilon_high, aggregation=args.loss_aggregation,
            mask_kl=args.mask_kl, bias_correction_kl=args.use_bias_correction_kl,
            max_completion_length=args.max_completion_length, global_normaliser=step_tokens,
            importance_weights=rollout.importance_weights,
        )
        for name in ("clip_fraction", "kl", "selected_fraction"):
            self._metrics[name].append(metrics[name].item())
        return loss

    def _activation_checkpointing(self) -> bool:
        """Whether activations are recomputed in backward (the Trainer's flag or FSDP's own),
        which a KV cache built in forward does not survive: the loss then runs full sequences."""
        if self.args.activation_checkpointing:
            return True
        plugin = getattr(self.accelerator.state, "fsdp_plugin", None) if self.is_fsdp_enabled else None
        return bool(getattr(plugin, "activation_checkpointing", False))

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        """The GRPO loss of a micro-batch (used outside ``training_step``, e.g. by tests)."""
        rollouts = self._as_rollouts(inputs)
        step_tokens = self._completion_tokens(rollouts, across_processes=False)  # the micro-batch is the step
        shares = self._prompt_shares(rollouts)
        loss = sum(self._prompt_loss(model, r, step_tokens) * share for r, share in zip(rollouts, shares))
        return (loss, None) if return_outputs else loss

    # ------------------------------------------------------------------ logging

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        """Adds the step's RL metrics, each the mean of its values on all processes, to the Trainer's logs.

        A metric may exist on some processes only (``temporal_bonus_applied`` is recorded for
        video prompts, not images): the names are merged first, so every process reduces
        tensors of the same length (else the collective would mismatch and abort).
        """
        if self._metrics:
            names = sorted(self._metrics)
            if self.accelerator.num_processes > 1:
                from accelerate.utils import gather_object

                names = sorted(set().union(*gather_object([names])))
            sums = [sum(self._metrics.get(name, ())) for name in names]
            counts = [len(self._metrics.get(name, ())) for name in names]
            totals = self.accelerator.reduce(
                torch.tensor([sums, counts], dtype=torch.float64, device=self.accelerator.device), reduction="sum"
            )
            logs = {**logs, **{name: s / c for name, s, c in zip(names, *totals.tolist()) if c > 0}}
            step_time = sum(logs.get(k, 0.0) for k in ("time/generation_s", "time/reward_s", "time/attribution_s",
                                                         "time/loss_s"))
            if step_time > 0 and "time/attribution_s" in logs:
                logs["time/attribution_share"] = logs["time/attribution_s"] / step_time
            self._metrics.clear()
        super().log(logs, start_time)

    def _dumps_this_step(self) -> bool:
        every = self.args.rollout_dump_steps
        return bool(every) and self.state.global_step % every == 0

    def _dump_rollouts(self, rollouts: list[PromptRollout]) -> None:
        """Every ``rollout_dump_steps`` steps, one JSONL line per completion for later analysis
        (the schema: ``data.rollouts.RolloutRecord``). Steps are numbered as the logs and
        checkpoints number them: the first optimizer step is step 1."""
        if not self._dumps_this_step():
            return
        step = self.state.global_step + 1
        records = [record for rollout in rollouts for record in rollout.dump_records(self.processing_class.tokenizer, step)]
        write_rollout_dump(dump_path(self.args.output_dir, step, self.accelerator.process_index), records)
