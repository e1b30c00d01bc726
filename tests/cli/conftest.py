"""The CLI tests train and evaluate on the trainer tests' tiny model and dataset."""

from tests.train.conftest import dataset_file, tiny_model_dir  # noqa: F401 - fixtures
