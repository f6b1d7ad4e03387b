"""The check raises the collector's first threshold while it runs and gives the old ones back."""

from __future__ import annotations

import gc

import pytest

from audit.collector import FIRST_GENERATION_THRESHOLD, fewer_collections
from audit.engine import audit_submission
from audit.submission import Submission


def test_threshold_is_raised_inside_and_restored_after():
    before = gc.get_threshold()
    with fewer_collections():
        assert gc.get_threshold()[0] >= FIRST_GENERATION_THRESHOLD
        assert gc.get_threshold()[1:] == before[1:]
    assert gc.get_threshold() == before


def test_threshold_is_restored_when_the_body_raises():
    before = gc.get_threshold()
    with pytest.raises(ValueError), fewer_collections():
        raise ValueError("boom")
    assert gc.get_threshold() == before


def test_a_check_leaves_the_process_thresholds_as_it_found_them():
    before = gc.get_threshold()
    gc.set_threshold(1234, 11, 12)
    try:
        audit_submission(Submission.from_files({"train_gpt.py": "import os\nprint(os.getcwd())\n"}))
        assert gc.get_threshold() == (1234, 11, 12)
    finally:
        gc.set_threshold(*before)
