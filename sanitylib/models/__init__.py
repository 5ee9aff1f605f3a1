"""Models: the model under test, the paper's networks, training.

Importing this package registers the built-in architectures with
:func:`sanitylib.models.under_test.model_under_test`.
"""

from sanitylib.models import efficientnet, inception, mnist  # noqa: F401 - registers them
from sanitylib.models.under_test import ModelUnderTest, model_under_test

__all__ = ["ModelUnderTest", "model_under_test"]
