"""``python -m videoktr.cli ...`` (what ``accelerate launch -m videoktr.cli train`` runs)."""

from . import main

raise SystemExit(main())
