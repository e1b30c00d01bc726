"""A reward that differs between random completions, so advantages (and gradients) are nonzero."""


def letter_e_share(completion: str, row) -> float:
    return completion.count("e") / max(len(completion), 1)
