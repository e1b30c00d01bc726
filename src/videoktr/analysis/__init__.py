"""Analysis of which tokens the signals select: statistics of rollout dumps, reports, plots,
and attribution quality against ground-truth labels.

* :mod:`~videoktr.analysis.rollouts` — ``analyze_rollouts`` (every statistic over loaded
  dumps), its text / JSON report and ``write_rollouts_html`` (the heatmap);
* :mod:`~videoktr.analysis.statistics` — selection counts, overlaps, top words, unselected
  tokens, score summaries; :mod:`~videoktr.analysis.words` — BPE tokens grouped into words;
  :mod:`~videoktr.analysis.pos` — part-of-speech distribution (spaCy, optional);
* :mod:`~videoktr.analysis.ground_truth` — precision and recall of a selection against labels;
* :mod:`~videoktr.analysis.html` and :mod:`~videoktr.analysis.plots` — rendering shared by the
  reports of ``videoktr analyze``, ``videoktr demo`` and ``videoktr ablate``.

The dump files themselves are read with ``videoktr.data.rollouts`` (re-exported here).
"""

from ..data.rollouts import (
    RolloutDumpError,
    RolloutRecord,
    dump_files,
    load_rollouts,
    parse_rollout,
)
from .ground_truth import SelectionQuality, token_labels
from .pos import POS_INSTALL_HINT, PosTaggerUnavailable, load_pos_tagger, pos_distribution
from .rollouts import RolloutAnalysis, analyze_rollouts, write_rollouts_html
from .statistics import (
    gradient_shares,
    score_summaries,
    selection_counts,
    selection_regions,
    top_selected_words,
    unselected_stats,
    weighting_of,
)
from .words import decode_tokens, merge_words

__all__ = [
    "POS_INSTALL_HINT",
    "PosTaggerUnavailable",
    "RolloutAnalysis",
    "RolloutDumpError",
    "RolloutRecord",
    "SelectionQuality",
    "analyze_rollouts",
    "decode_tokens",
    "dump_files",
    "load_pos_tagger",
    "load_rollouts",
    "merge_words",
    "parse_rollout",
    "pos_distribution",
    "score_summaries",
    "selection_counts",
    "selection_regions",
    "token_labels",
    "top_selected_words",
    "gradient_shares",
    "unselected_stats",
    "weighting_of",
    "write_rollouts_html",
]
