"""Every registered benchmark module implements the ``Benchmark`` protocol (and, where its
official scorer asks an LLM judge, ``JudgedBenchmark``): the members exist, have the protocol's
types, and the functions take the protocol's parameters."""

import inspect
import typing

import pytest

from videoktr.eval.benchmarks import BENCHMARKS, Benchmark, JudgedBenchmark


def members(protocol) -> dict[str, object]:
    """The protocol's data members (name -> annotation) and methods (name -> function), its
    bases' included; the protocol's own override a base's."""
    found: dict[str, object] = {}
    for cls in reversed(protocol.__mro__):
        if cls in (Benchmark, JudgedBenchmark):
            found.update(typing.get_type_hints(cls))
            found.update({name: value for name, value in vars(cls).items()
                          if inspect.isfunction(value) and not name.startswith("_")})
    return found


def parameters(function) -> list[inspect.Parameter]:
    return [p for p in inspect.signature(function).parameters.values() if p.name != "self"]


def accepts_the_protocols_call(function, expected) -> bool:
    """The protocol's parameters come first, by name and kind; any extra ones are optional."""
    given, wanted = parameters(function), parameters(expected)
    same = [(p.name, p.kind) for p in given[: len(wanted)]] == [(p.name, p.kind) for p in wanted]
    return same and all(p.default is not inspect.Parameter.empty for p in given[len(wanted):])


@pytest.mark.parametrize("name", sorted(BENCHMARKS))
def test_each_benchmark_module_implements_the_protocol(name):
    module = BENCHMARKS[name]
    protocol = JudgedBenchmark if hasattr(module, "JUDGE_PARSERS") else Benchmark
    for member, expected in members(protocol).items():
        assert hasattr(module, member), f"{name} lacks {member}"
        value = getattr(module, member)
        if inspect.isfunction(expected):
            assert accepts_the_protocols_call(value, expected), f"{name}.{member}{inspect.signature(value)}"
        else:
            origin = typing.get_origin(expected) or expected
            assert isinstance(value, origin), f"{name}.{member} is a {type(value).__name__}, not {origin}"
    assert module.NAME == name and module.PARSERS[0] == "official"
    assert set(module.BREAKDOWN_ORDER) <= set(module.BREAKDOWN_FIELDS)


def test_the_judged_benchmarks_are_the_two_whose_official_scorer_asks_a_judge():
    judged = sorted(name for name, module in BENCHMARKS.items() if hasattr(module, "JUDGE_PARSERS"))
    assert judged == ["mmvu", "tempcompass"]
