"""Suite-wide settings: nothing in the tests may reach a model hub."""

import os

# Set before transformers is imported anywhere: every model and processor in the tests is
# built from config or loaded from a local directory.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
