"""Experiments on the built-in synthetic world, above the library: they use ``train``, ``eval``,
``analysis`` and ``synthetic`` and nothing in the library imports them.

* :mod:`~videoktr.experiments.demo` — ``videoktr demo``: the whole method on the world, with a
  report of accuracy before and after RL and of the signals against ground-truth labels;
* :mod:`~videoktr.experiments.ablate` — ``videoktr ablate``: the paper's ablations (signal
  subsets, the ratio, hard vs soft), arms x seeds from one warm-up checkpoint;
  :mod:`~videoktr.experiments.ablation_results` — its rows file, table, CSV files and plot;
* :mod:`~videoktr.experiments.policy` — the demo's policy and sizes (``DemoConfig``), the stages
  before RL (``prepare_policy``) and the RL run (``train_rl``), shared by both;
* the stages that stand in for a real model's pretraining, each on the one shared loop
  (:mod:`~videoktr.experiments.supervised`): :mod:`~videoktr.experiments.encoder` (the vision
  encoder on per-cell shape labels), :mod:`~videoktr.experiments.order` (which shape appeared
  first) and :mod:`~videoktr.experiments.warmup` (SFT on the reasoning traces).

What they measured, and why the stages are what they are: ``docs/demo.md`` and
``docs/ablation.md``.
"""
