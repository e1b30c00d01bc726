"""Rewards for the trainer tests, named as ``tests.train.fixture_rewards:NAME``."""


def letter_e_share(completion: str, row) -> float:
    """Differs between random completions, so advantages (and gradients) are nonzero."""
    return completion.count("e") / max(len(completion), 1)


def huge(completion: str, row) -> float:
    """Finite in float64, infinite in float32: 1e39 for completions with an odd count of the
    letter e, else 0 (so the group's rewards differ)."""
    return 1e39 if completion.count("e") % 2 else 0.0
