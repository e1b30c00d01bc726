"""Statistics of rollout dumps: on a dump recorded with the real trainer, and on small
hand-written dumps whose every count is worked out by hand below."""

import json
import math
import re
import sys
import types
from pathlib import Path

import pytest

from videoktr.analysis import (
    POS_INSTALL_HINT,
    PosTaggerUnavailable,
    RolloutDumpError,
    analyze_rollouts,
    decode_tokens,
    dump_files,
    load_pos_tagger,
    load_rollouts,
    merge_words,
    parse_rollout,
    pos_distribution,
    score_summaries,
    selection_counts,
    selection_regions,
    top_selected_words,
    unselected_stats,
    weighting_of,
    write_rollouts_html,
)
from videoktr.cli import main

RECORDED = Path(__file__).resolve().parents[1] / "fixtures" / "rollouts"
NAN = math.nan


def record(tokens, visual, temporal, entropy, scores, step=3, prompt_id="train.jsonl line 1", selected="union"):
    """A dump line as the trainer writes it: ``visual`` / ``temporal`` / ``entropy`` are 0/1 masks."""
    masks = {"visual": visual, "temporal": temporal, "entropy": entropy}
    if selected == "union":
        selected = [float(any(m[i] for m in masks.values())) for i in range(len(tokens))]
    return {
        "step": step, "prompt_id": prompt_id, "problem_type": "multiple choice", "completion": decode_tokens(tokens),
        "tokens": tokens, "token_ids": list(range(len(tokens))), "scores": scores, "selected": selected,
        "signal_masks": {name: [bool(v) for v in mask] for name, mask in masks.items()},
        "reward": 1.0, "rewards": {"accuracy": 1.0, "format": 0.0}, "advantage": 0.5,
    }


# Three completions, 18 tokens. Words (key: selected by):
#   R1  the: -  red: V T E  circle (2 tokens): V  moves: T  first (2 tokens, "first."): T E
#   R2  red: V E  square: V  then: T E  red: -  circle: V
#   R3  <think>: -  a: E  red: V  dot: V E  </think>: -  <|im_end|>: -   (an image: temporal is NaN)
R1 = record(
    ["The", "Ġred", "Ġcir", "cle", "Ġmoves", "Ġfirst", "."],
    visual=[0, 1, 1, 0, 0, 0, 0], temporal=[0, 1, 0, 0, 1, 1, 0], entropy=[0, 1, 0, 0, 0, 1, 0],
    scores={"visual": [0.1, 0.9, 0.8, 0.2, 0.1, 0.1, 0.0], "temporal": [0.0, 0.5, 0.1, 0.0, 0.6, 0.7, 0.2],
            "entropy": [1.0, 2.0, 1.0, 1.0, 1.0, 2.0, 1.0]},
)
R2 = record(
    ["Ġred", "Ġsquare", "Ġthen", "Ġred", "Ġcircle"],
    visual=[1, 1, 0, 0, 1], temporal=[0, 0, 1, 0, 0], entropy=[1, 0, 1, 0, 0],
    scores={"visual": [0.7, 0.6, 0.1, 0.2, 0.5], "temporal": [0.1, 0.0, 0.4, 0.1, 0.0],
            "entropy": [2.0, 1.0, 2.0, 1.0, 1.0]},
)
R3 = record(
    ["<think>", "A", "Ġred", "Ġdot", "</think>", "<|im_end|>"],
    visual=[0, 0, 1, 1, 0, 0], temporal=[0] * 6, entropy=[0, 1, 0, 1, 0, 0],
    scores={"visual": [0.0, 0.1, 0.9, 0.8, 0.1, 0.0], "temporal": [NAN] * 6,
            "entropy": [1.0, 2.0, 1.0, 2.0, 1.0, 1.0]},
    step=4, prompt_id="train.jsonl line 2",
)


def write_dump(path, records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records))  # NaN is written as NaN, as the trainer does
    return path


@pytest.fixture
def hand_dump(tmp_path):
    return write_dump(tmp_path / "step000003-rank0.jsonl", [R1, R2, R3])


@pytest.fixture
def rollouts(hand_dump):
    return load_rollouts(hand_dump)


# ---------------------------------------------------------------- hand-written dumps


def test_venn_regions_put_each_token_in_the_one_region_of_its_signals(rollouts):
    assert selection_regions(rollouts) == {
        "visual only": 4,  # R1 circle's first token, R2 square and circle, R3 red
        "temporal only": 1,  # R1 moves
        "entropy only": 1,  # R3 A
        "visual & temporal only": 0,
        "visual & entropy only": 2,  # R2 red, R3 dot
        "temporal & entropy only": 2,  # R1 first, R2 then
        "visual & temporal & entropy": 1,  # R1 red
        "none": 7,
    }
    assert selection_counts(rollouts) == {"visual": 7, "temporal": 4, "entropy": 6, "any": 11}


def test_regions_of_a_subset_of_signals_and_of_a_run_without_selection(rollouts, tmp_path):
    assert selection_regions(rollouts, signals=["visual", "temporal"]) == {
        "visual only": 6, "temporal only": 3, "visual & temporal": 1, "none": 8,
    }
    grpo = dict(R1, signal_masks={}, selected=None)
    assert selection_regions([parse_rollout(json.dumps(grpo))]) == {"none": 7}


def test_top_selected_words_count_occurrences_and_selected_share(rollouts):
    top = top_selected_words(rollouts, top=3)
    as_tuples = {s: [(w.word, w.selected, w.occurrences) for w in words] for s, words in top.items()}
    assert as_tuples == {
        # red occurs 4 times and visual selected 3 of them; ties are broken by the word
        "visual": [("red", 3, 4), ("circle", 2, 2), ("dot", 1, 1)],
        "temporal": [("first", 1, 1), ("moves", 1, 1), ("red", 1, 4)],  # "first." counts as "first"
        "entropy": [("red", 2, 4), ("a", 1, 1), ("dot", 1, 1)],
    }
    assert top["visual"][0].share == pytest.approx(0.75)
    assert [w.word for w in top_selected_words(rollouts, top=10)["visual"]] == ["red", "circle", "dot", "square"]


def test_unselected_statistics(rollouts):
    stats = unselected_stats(rollouts, top=10)
    assert (stats.tokens, stats.unselected) == (18, 7)
    assert stats.share == pytest.approx(7 / 18)
    assert [(w.word, w.selected, w.occurrences) for w in stats.top_words] == [
        ("</think>", 1, 1), ("<think>", 1, 1), ("<|im_end|>", 1, 1), ("red", 1, 4), ("the", 1, 1),
    ]
    means = stats.mean_scores
    # key tokens: selected by any signal (11); unselected: by none (7). NaN temporal scores are left out.
    assert means["visual"]["key"] == pytest.approx(5.6 / 11)
    assert means["visual"]["unselected"] == pytest.approx(0.6 / 7)
    assert means["temporal"]["key"] == pytest.approx(2.4 / 8)
    assert means["temporal"]["unselected"] == pytest.approx(0.3 / 4)
    assert means["entropy"]["unselected"] == pytest.approx(1.0)


def test_score_summaries_leave_out_nan_and_split_by_the_signals_own_selection(rollouts):
    summaries = score_summaries(rollouts)
    temporal = summaries["temporal"]
    assert (temporal.tokens, temporal.missing) == (12, 6)  # R3 is an image: no temporal score
    assert temporal.mean == pytest.approx(2.7 / 12)
    assert temporal.median == pytest.approx(0.1)
    assert temporal.p90 == pytest.approx(0.59)  # between the 10th (0.5) and 11th (0.6) of 12 sorted values
    assert (temporal.minimum, temporal.maximum) == (0.0, 0.7)
    assert temporal.mean_selected == pytest.approx(2.2 / 4)
    assert temporal.mean_unselected == pytest.approx(0.5 / 8)
    visual = summaries["visual"]
    assert (visual.tokens, visual.missing) == (18, 0)
    assert visual.mean_selected == pytest.approx(5.2 / 7)
    assert visual.mean_unselected == pytest.approx(1.0 / 11)
    assert (summaries["entropy"].mean_selected, summaries["entropy"].mean_unselected) == (2.0, 1.0)
    assert summaries["entropy"].std == pytest.approx(math.sqrt(6 * 12 / 18**2))  # 6 twos, 12 ones


def test_words_merge_bpe_pieces_and_split_at_tags():
    words = merge_words(["<think>", "A", "Ġcir", "cle", ".", "Ċ", "Next", "Ġ", "Ġ", "x", "<|im_end|>"],
                        {"visual": [0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0]})
    assert [(w.text, w.start, w.end) for w in words] == [
        ("<think>", 0, 1), ("A", 1, 2), ("circle.", 2, 5), ("Next", 6, 7), ("x", 9, 10), ("<|im_end|>", 10, 11),
    ]
    assert [w.key for w in words] == ["<think>", "a", "circle", "next", "x", "<|im_end|>"]
    assert [sorted(w.selected_by) for w in words] == [[], [], ["visual"], [], [], []]


def test_decode_tokens_restores_multibyte_characters():
    # "é" is two bytes, which byte-level BPE writes as "Ã" and "©"; split over two tokens
    assert decode_tokens(["ĠcafÃ", "©", "Ċ"]) == " café\n"
    assert decode_tokens(["Ã"]) == "\ufffd"  # half a character


def test_weighting_is_read_from_the_selected_field(rollouts):
    assert weighting_of(rollouts) == "hard"
    soft = parse_rollout(json.dumps(dict(R1, selected=[0.1] * 7)))
    assert weighting_of([*rollouts, soft]) == "soft"
    assert weighting_of([parse_rollout(json.dumps(dict(R1, selected=None)))]) == "none"


# ---------------------------------------------------------------- part of speech

FAKE_TAGS = {"the": "DET", "a": "DET", "red": "ADJ", "moves": "VERB", "then": "ADV", "first.": "ADV"}


def fake_tagger(calls):
    def tag(words):
        calls.append(list(words))
        return ["X" if w.startswith("<") else FAKE_TAGS.get(w.lower(), "NOUN") for w in words]
    return tag


def test_pos_distribution_counts_each_signals_selected_words(rollouts):
    calls = []
    pos = pos_distribution(rollouts, fake_tagger(calls))
    # one call per completion, with its words in order (the tagger sees their context)
    assert calls == [["The", "red", "circle", "moves", "first."], ["red", "square", "then", "red", "circle"],
                     ["<think>", "A", "red", "dot", "</think>", "<|im_end|>"]]
    assert pos == {
        "visual": {"NOUN": 4, "ADJ": 3},
        "temporal": {"ADV": 2, "ADJ": 1, "VERB": 1},
        "entropy": {"ADJ": 2, "ADV": 2, "DET": 1, "NOUN": 1},
        "all": {"ADJ": 4, "NOUN": 4, "X": 3, "ADV": 2, "DET": 2, "VERB": 1},
    }
    assert list(pos["visual"]) == ["NOUN", "ADJ"]  # most frequent first


def test_pos_distribution_rejects_a_tagger_that_loses_words(rollouts):
    with pytest.raises(ValueError, match=r"line 1: the POS tagger returned 1 tags for 5 words"):
        pos_distribution(rollouts, lambda words: ["NOUN"])


def test_missing_spacy_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "spacy", None)  # import spacy -> ImportError
    with pytest.raises(PosTaggerUnavailable) as raised:
        load_pos_tagger()
    assert POS_INSTALL_HINT in str(raised.value)
    assert "pip install 'videoktr[pos]'" in str(raised.value)
    assert "python -m spacy download en_core_web_sm" in str(raised.value)


def test_missing_english_model_says_how_to_install_it(monkeypatch):
    spacy = types.ModuleType("spacy")

    def load(name, **_):
        raise OSError(f"[E050] Can't find model '{name}'")

    spacy.load = load
    tokens = types.ModuleType("spacy.tokens")
    tokens.Doc = object
    monkeypatch.setitem(sys.modules, "spacy", spacy)
    monkeypatch.setitem(sys.modules, "spacy.tokens", tokens)
    with pytest.raises(PosTaggerUnavailable, match="'en_core_web_sm', which is not installed") as raised:
        load_pos_tagger()
    assert "python -m spacy download en_core_web_sm" in str(raised.value)


def test_cli_pos_without_spacy_exits_2_with_the_install_hint(hand_dump, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "spacy", None)
    assert main(["analyze", str(hand_dump), "--pos"]) == 2
    captured = capsys.readouterr()
    assert "pip install 'videoktr[pos]'" in captured.err and captured.out == ""


def test_report_prints_pos_shares_when_a_tagger_is_given(rollouts):
    text = analyze_rollouts(rollouts, pos_tagger=fake_tagger([])).format_text()
    noun = next(line for line in text.splitlines() if line.strip().startswith("NOUN"))
    # columns: visual, temporal, entropy, all
    assert noun.split() == ["NOUN", "57.1%", "0.0%", "16.7%", "25.0%"]


# ---------------------------------------------------------------- loading and errors


def test_malformed_json_names_the_file_and_line(tmp_path):
    path = tmp_path / "step000001-rank0.jsonl"
    path.write_text(json.dumps(R1) + "\n\n" + '{"tokens": ["a"], "scores": \n')
    with pytest.raises(RolloutDumpError, match=rf"{re.escape(str(path))} line 3: invalid JSON"):
        load_rollouts(path)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda r: r.pop("signal_masks"), r"line 2: missing field 'signal_masks'"),
        (lambda r: (r.pop("tokens"), r.pop("scores")), r"line 2: missing fields 'tokens', 'scores'"),
        (lambda r: r["scores"]["visual"].pop(), r"line 2: field 'scores.visual' has 6 values for 7 tokens"),
        (lambda r: r["signal_masks"]["entropy"].__setitem__(0, "yes"), r"line 2: field 'signal_masks.entropy': "),
        (lambda r: r.__setitem__("selected", [1.0]), r"line 2: field 'selected' has 1 values for 7 tokens"),
        (lambda r: r.__setitem__("tokens", "The red"), r"line 2: field 'tokens' must be a list of strings"),
    ],
)
def test_bad_records_name_the_file_line_and_field(tmp_path, change, message):
    bad = json.loads(json.dumps(R1))
    change(bad)
    path = write_dump(tmp_path / "dump.jsonl", [R2, bad])
    with pytest.raises(RolloutDumpError, match=message) as raised:
        load_rollouts(path)
    assert str(raised.value).startswith(str(path))


def test_load_files_and_directories(tmp_path):
    runs = tmp_path / "runs"
    runs.mkdir()
    first = write_dump(runs / "step000002-rank0.jsonl", [R1])
    second = write_dump(runs / "step000001-rank0.jsonl", [R2, R3])
    (runs / "notes.txt").write_text("not a dump")
    assert dump_files(runs) == [second, first]  # name order: step 1 before step 2
    loaded = load_rollouts([first, second])
    assert [(Path(r.file).name, r.line, r.step) for r in loaded] == [
        ("step000002-rank0.jsonl", 1, 3), ("step000001-rank0.jsonl", 1, 3), ("step000001-rank0.jsonl", 2, 4),
    ]
    assert math.isnan(loaded[2].scores["temporal"][0])
    (tmp_path / "empty").mkdir()
    with pytest.raises(RolloutDumpError, match="empty: directory holds no"):
        load_rollouts(tmp_path / "empty")
    with pytest.raises(RolloutDumpError, match="missing.jsonl: no such file"):
        load_rollouts([first, tmp_path / "missing.jsonl"])


def test_null_scores_mean_unavailable():
    rollout = parse_rollout(json.dumps(dict(R1, scores={"temporal": [None] * 7})))
    assert all(math.isnan(v) for v in rollout.scores["temporal"])
    assert score_summaries([rollout])["temporal"].missing == 7


# ---------------------------------------------------------------- the report


def test_analysis_to_json_and_text(rollouts, tmp_path):
    analysis = analyze_rollouts(rollouts, top=2)
    written = json.loads(analysis.write_json(tmp_path / "analysis.json").read_text())
    assert written["completions"] == 3 and written["tokens"] == 18 and written["steps"] == [3, 4]
    assert written["regions"]["none"] == 7 and written["unselected"]["unselected"] == 7
    assert written["top_words"]["visual"][0] == {"word": "red", "selected": 3, "occurrences": 4, "share": 0.75}
    assert written["scores"]["temporal"]["missing"] == 6 and written["pos"] is None
    text = analysis.format_text()
    assert "3 completions, 18 tokens, steps 3-4, from 1 file(s)" in text
    assert re.search(r"visual & entropy only\s+2\s+11\.1%", text)
    assert re.search(r"unselected tokens \(no signal selected them\): 7 of 18 \(38\.9%\)", text)


def test_html_report_colours_selected_tokens_and_shows_scores(rollouts, tmp_path):
    analysis = analyze_rollouts(rollouts)
    page = write_rollouts_html(tmp_path / "report.html", analysis, rollouts, max_completions=2).read_text()
    assert page.count("class='ex'") == 2 and "Completions (2 of 3)" in page
    spans = re.findall(r'<span class="tok" style="([^"]*)" title="([^"]*)">([^<]*)</span>', page)
    assert len(spans) == 7 + 5  # the tokens of the two completions shown
    style, title, text = spans[1]  # R1 "Ġred": selected by all three
    assert text == " red"
    assert "linear-gradient(#4e79a7, #f28e2b, #59a14f, #59a14f)" in style
    assert title == "visual 0.900; temporal 0.500; entropy 2.000; weight 1.000"
    style, title, text = spans[0]  # R1 "The": selected by none
    assert "background:transparent" in style and title.endswith("weight 0.000")
    assert "&lt;think&gt;" not in page  # R3 is not shown


def test_html_shows_unavailable_scores_as_na(rollouts, tmp_path):
    page = write_rollouts_html(tmp_path / "r.html", analyze_rollouts(rollouts), rollouts).read_text()
    assert "visual 0.000; temporal n/a; entropy 1.000; weight 0.000" in page  # R3's "<think>"
    assert "&lt;think&gt;" in page


# ---------------------------------------------------------------- a dump recorded with the real trainer


@pytest.fixture(scope="module")
def recorded():
    return load_rollouts(RECORDED)


def test_recorded_dump_loads_every_completion(recorded):
    # make_fixture.py: 2 steps x 2 prompts x 3 completions of 16 tokens, video_ktr preset
    assert len(recorded) == 12
    assert [(Path(r.file).name, r.step) for r in recorded[::6]] == [("step000000-rank0.jsonl", 0),
                                                                      ("step000001-rank0.jsonl", 1)]
    assert all(len(r.tokens) == 16 and set(r.signal_masks) == {"visual", "temporal", "entropy"} for r in recorded)
    # The byte decoder turns the tokens back into the trainer's decoded text (which skips special tokens).
    for r in recorded:
        assert decode_tokens([t for t in r.tokens if not re.fullmatch(r"<\|.*\|>", t)]) == r.completion


def test_recorded_dump_statistics_agree_with_the_trainers_selection(recorded):
    analysis = analyze_rollouts(recorded)
    assert analysis.weighting == "hard" and analysis.signals == ["visual", "temporal", "entropy"]
    assert sum(analysis.regions.values()) == analysis.tokens == 192
    # the hard mask the trainer trained on is the union of the signals' selections
    trained = sum(w == 1.0 for r in recorded for w in r.selected)
    assert analysis.selected_tokens["any"] == trained == analysis.tokens - analysis.regions["none"]
    assert analysis.unselected.unselected == analysis.regions["none"]
    # group scope: each signal selects exactly ceil(0.2 * 48) tokens among one prompt's 3 x 16 tokens
    for start in range(0, 12, 3):
        group = recorded[start:start + 3]
        assert len({(r.step, r.prompt_id) for r in group}) == 1
        counts = selection_counts(group)
        assert [counts[s] for s in ("visual", "temporal", "entropy")] == [10, 10, 10]
    for signal, summary in analysis.scores.items():
        assert summary.tokens == 192 and summary.missing == 0
        # the selection is the top of the scores: the selected mean is above the rest
        assert summary.mean_selected > summary.mean_unselected, signal
    for signal, words in analysis.top_words.items():
        assert words and sum(w.selected for w in words) <= analysis.selected_tokens[signal]
        assert all(0 < w.share <= 1 for w in words)


def test_recorded_dump_words_cover_every_token(recorded):
    for r in recorded:
        words = merge_words(r.tokens, r.signal_masks)
        covered = [i for w in words for i in range(w.start, w.end)]
        assert covered == sorted(set(covered))  # in order, no token in two words
        uncovered = set(range(len(r.tokens))) - set(covered)
        assert all(decode_tokens([r.tokens[i]]).isspace() for i in uncovered)  # only whitespace is dropped


def test_cli_analyze_recorded_dump_writes_html_and_json(tmp_path, capsys):
    html_path, json_path = tmp_path / "report.html", tmp_path / "analysis.json"
    files = sorted(str(p) for p in RECORDED.glob("*.jsonl"))
    assert main(["analyze", *files, "--top", "3", "--html", str(html_path), "--json", str(json_path)]) == 0
    out = capsys.readouterr().out
    assert "12 completions, 192 tokens, steps 0-1, from 2 file(s)" in out
    assert "words most often selected by temporal" in out
    assert f"html report: {html_path}" in out and f"json: {json_path}" in out
    assert html_path.read_text().count("class='ex'") == 12
    written = json.loads(json_path.read_text())
    assert sum(written["regions"].values()) == 192
    assert all(len(words) <= 3 for words in written["top_words"].values())


def test_cli_analyze_bad_input_exits_2_naming_the_line(tmp_path, capsys):
    path = tmp_path / "broken.jsonl"
    path.write_text(json.dumps(R1) + "\nnot json\n")
    assert main(["analyze", str(path)]) == 2
    assert f"{path} line 2: invalid JSON" in capsys.readouterr().err


def test_a_grpo_dump_has_no_unselected_tokens(tmp_path, capsys):
    """GRPO and T-GRPO dump no token weights (``selected`` null) and no signal masks: every token is
    trained, so the report must not call them unselected."""
    grpo = {**R1, "selected": None, "signal_masks": {}, "scores": {"entropy": R1["scores"]["entropy"]}}
    path = tmp_path / "step000001-rank0.jsonl"
    path.write_text(json.dumps(grpo) + "\n")
    rollouts = load_rollouts(path)
    stats = unselected_stats(rollouts)
    assert (stats.tokens, stats.unselected, stats.top_words) == (7, 0, [])
    report = analyze_rollouts(rollouts)
    assert report.weighting == "none"
    text = report.format_text()
    assert "unselected tokens: none (token weighting none: GRPO or T-GRPO trains every token)" in text
    assert "0 of 7" not in text and "7 of 7" not in text


def test_html_report_escapes_what_the_model_wrote(tmp_path):
    """A completion is model output: a <script> in it must reach the page as text."""
    hostile = record(["<script>", "alert(1)", "</script>", "&amp;"], visual=[1, 0, 0, 0], temporal=[0, 0, 0, 0],
                     entropy=[0, 1, 0, 0], scores={"visual": [1.0, 0.0, 0.0, 0.0], "temporal": [0.0] * 4,
                                                   "entropy": [0.0, 1.0, 0.0, 0.0]},
                     prompt_id='<img src=x onerror="alert(2)">')
    path = tmp_path / "step000001-rank0.jsonl"
    path.write_text(json.dumps(hostile) + "\n")
    rollouts = load_rollouts(path)
    page = write_rollouts_html(tmp_path / "r.html", analyze_rollouts(rollouts), rollouts).read_text()
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert "<img src=x" not in page and "&amp;amp;" in page


def test_gradient_shares_by_hand(tmp_path):
    """Two completions; A^2 g per token: R1 (A = 1): 0.5, 0.0, 0.25; R2 (A = -2): 4 * 0.125 = 0.5, 0, 0.25 * 4 = 1."""
    first = {**record(["a", "b", "c"], visual=[1, 0, 0], temporal=[0, 0, 0], entropy=[0, 0, 1],
                      scores={"visual": [1.0, 0.0, 0.0], "temporal": [0.0] * 3, "entropy": [0.0, 0.0, 1.0]}),
             "advantage": 1.0, "gradient_weights": [0.5, 0.0, 0.25]}
    second = {**record(["d", "e", "f"], visual=[0, 0, 0], temporal=[0, 0, 0], entropy=[1, 0, 0],
                       scores={"visual": [0.0] * 3, "temporal": [0.0] * 3, "entropy": [1.0, 0.0, 0.0]}),
              "advantage": -2.0, "gradient_weights": [0.125, 0.5, 0.25]}
    path = tmp_path / "step000001-rank0.jsonl"
    path.write_text(json.dumps(first) + "\n" + json.dumps(second) + "\n")
    rollouts = load_rollouts(path)
    # masses: R1 0.5, 0, 0.25; R2 0.5, 2.0, 1.0 (total 4.25); dropped (selected 0): R1 "b", R2 "e", "f"
    shares = analyze_rollouts(rollouts).gradient_shares
    assert shares["unselected"] == pytest.approx(3.0 / 4.25)
    assert shares["visual"] == pytest.approx(0.5 / 4.25)
    assert shares["entropy"] == pytest.approx((0.25 + 0.5) / 4.25)
    assert "dropped by the mask" in analyze_rollouts(rollouts).format_text()
    old = {key: value for key, value in first.items() if key != "gradient_weights"}
    path.write_text(json.dumps(old) + "\n")
    assert analyze_rollouts(load_rollouts(path)).gradient_shares is None  # a dump from before the field
