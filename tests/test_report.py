"""The run reports against their documented schema (docs/report.schema.json, docs/report.md).

The modes' tests (test_cli, test_live, test_batch) check each report they write with
`check_schema`; this file checks that the schema and the report types stay in step.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import jsonschema
from conftest import REPO

from streamdeblur.core.report import BatchFigures, BatchInput, Counts, EngineFields, LiveFigures, StageTime
from streamdeblur.pipeline.stats import STAGES, RunStats

SCHEMA = json.loads((REPO / "docs" / "report.schema.json").read_text())


def check_schema(report: dict[str, Any], mode: str) -> None:
    """`report` is a valid `mode` report (file, live or batch), its keys in the documented order."""
    jsonschema.validate(report, {"$ref": f"#/$defs/{mode}", "$defs": SCHEMA["$defs"]})
    assert list(report) == list(SCHEMA["$defs"][mode]["properties"])


def names(part: type) -> list[str]:
    return [f.name for f in dataclasses.fields(part)]


def test_schema_lists_every_field_of_the_report_parts_in_order() -> None:
    defs = SCHEMA["$defs"]
    head = names(Counts) + names(EngineFields)
    assert list(defs["file"]["properties"]) == [*head, "stages", "frames"]
    assert list(defs["live"]["properties"]) == [*head, *names(LiveFigures), "stages", "frames"]
    assert list(defs["batch"]["properties"]) == [*head, "stages", "frames", *names(BatchFigures)]
    assert list(defs["batch_input"]["properties"]) == names(BatchInput)
    assert list(defs["stages"]["properties"]) == list(STAGES)
    assert list(defs["stage"]["properties"]) == names(StageTime)


def test_a_report_without_engine_fields_or_with_a_stray_key_is_refused() -> None:
    report = RunStats().report(EngineFields("m", "w", "cpu", "fp32", None)).to_json()
    check_schema(report, "file")
    for broken in ({k: v for k, v in report.items() if k != "model"}, {**report, "extra": 1}):
        try:
            check_schema(broken, "file")
        except (jsonschema.ValidationError, AssertionError):
            continue
        raise AssertionError(f"accepted {sorted(broken)}")
