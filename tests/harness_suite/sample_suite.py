"""A two-test suite on the plugin's ``backend`` fixture, run only by tests/test_harness.py in a child
pytest (its file name keeps it out of sparsekit's own collection)."""
import os


def test_always_passes(backend):
    assert backend.name


def test_always_fails(backend):
    assert os.environ.get("SPARSEKIT_HARNESS_CHILD") != "1", "deliberate failure (a known gap)"
