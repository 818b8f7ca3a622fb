"""The tags the gate writes on a model version, and how a listing says them.

Apart from :mod:`kubricks.registry.gate` (which imports MLflow) so that `kubricks models list`
reads them over the REST API without loading MLflow.
"""

from __future__ import annotations

from collections.abc import Mapping

RUN_TAG = "kubricks.run_id"
STATUS_TAG = "gate.status"  # pending, then passed or failed
PENDING, PASSED, FAILED = "pending", "passed", "failed"
REASON_TAG = "gate.reason"
ALARM_TAG = "gate.alarm"
APPROVAL_TAG = "gate.approval"  # pending, approved or rejected (only with approval: required)
CANDIDATE_PREFIX = "gate.candidate."
CHAMPION_PREFIX = "gate.champion."
FRESH_CANDIDATE_PREFIX = "gate.fresh.candidate."
FRESH_CHAMPION_PREFIX = "gate.fresh.champion."
FRESH_ROWS_TAG = "gate.fresh_rows"
FRESH_NOTE_TAG = "gate.fresh_note"
CHAMPION_VERSION_TAG = "gate.champion_version"


def status_text(tags: Mapping[str, str]) -> str:
    """The gate's state of a version in a few words, for listings."""
    status = tags.get(STATUS_TAG)
    if status not in (PASSED, FAILED):
        return "not gated"
    text = status
    approval = tags.get(APPROVAL_TAG)
    if status == PASSED and approval:
        text += ", approval pending" if approval == PENDING else f", {approval}"
    if tags.get(ALARM_TAG):
        text += " (alarm)"
    return text
