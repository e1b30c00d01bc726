"""Dataset rows and completions the reward tests score."""

OPTIONS = ["A. red", "B. blue", "C. green", "D. Vitamin C."]


def row(problem_type, solution, options=None):
    return {
        "problem": "q",
        "problem_type": problem_type,
        "options": options or [],
        "solution": solution,
        "path": "./clip.mp4",
        "data_type": "video",
    }


def answered(text):
    return f"<think>let me think</think><answer>{text}</answer>"
