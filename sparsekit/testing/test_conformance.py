"""The conformance suite, collected by ``pytest --pyargs sparsekit.testing`` (see ``conformance``)."""
from sparsekit.testing.conformance import *  # noqa: F401,F403
