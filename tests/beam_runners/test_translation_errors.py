"""What cannot be translated to Beam fails before submission, in one line naming the step and why."""

from __future__ import annotations

import pytest

pytest.importorskip("apache_beam")

import millstream as beam  # noqa: E402
from millstream.engine.translate.beam.dofns import UntranslatableError  # noqa: E402
from millstream.engine.translate.beam.translator import translate  # noqa: E402
from millstream.options.pipeline_options import PipelineOptions  # noqa: E402


def test_late_data_output_is_refused_naming_the_step():
    p = beam.Pipeline(options=PipelineOptions(["--runner=PrismRunner", "--prism_location=/nonexistent"]))
    main, late = p | beam.Create([("a", 1)]) | "Group" >> beam.GroupByKey().with_late_data()
    with pytest.raises(
        UntranslatableError, match=r"^step 'Group': with_late_data\(\) has no Beam counterpart"
    ):
        p.run()  # fails in translation: the nonexistent prism binary is never started


def test_translation_keeps_labels_and_composites():
    p = beam.Pipeline()
    counted = p | "Words" >> beam.Create(["a", "b", "a"]) | "Count" >> beam.combiners.Count.PerElement()
    _ = counted | "Show" >> beam.Map(str)
    bp = translate(p)
    labels = set()

    class Visitor:
        def enter_composite_transform(self, node):
            labels.add(node.full_label)

        def leave_composite_transform(self, node):
            pass

        def visit_transform(self, node):
            labels.add(node.full_label)

        def visit_value(self, value, producer):
            pass

    bp.visit(Visitor())
    ms_labels = {t.full_label for t in p.primitives()}
    assert {"Words", "Count", "Show"} <= labels
    assert ms_labels <= labels, sorted(ms_labels - labels)
