"""What cannot be translated to Beam fails before submission, in one line naming the step and why."""

from __future__ import annotations

import pytest

pytest.importorskip("apache_beam")

import millstream as beam  # noqa: E402
from millstream.engine.translate.beam.dofns import UntranslatableError  # noqa: E402
from millstream.engine.translate.beam.translator import translate  # noqa: E402
from millstream.options.pipeline_options import PipelineOptions  # noqa: E402
from millstream.testing.test_stream import TestStream  # noqa: E402


def test_late_data_output_of_an_unbounded_input_is_refused_naming_the_step():
    p = beam.Pipeline(options=PipelineOptions(["--runner=PrismRunner", "--prism_location=/nonexistent"]))
    events = TestStream().add_elements([("a", 1)]).advance_watermark_to_infinity()
    main, late = p | events | "Group" >> beam.GroupByKey().with_late_data()
    with pytest.raises(
        UntranslatableError, match=r"^step 'Group': with_late_data\(\) has no Beam counterpart"
    ):
        p.run()  # fails in translation: the nonexistent prism binary is never started


def test_late_data_output_in_streaming_mode_is_refused():
    p = beam.Pipeline(options=PipelineOptions(["--streaming"]))
    _ = p | beam.Create([("a", 1)]) | "Sum" >> beam.CombinePerKey(sum).with_late_data("late")
    with pytest.raises(UntranslatableError, match=r"^step 'Sum': with_late_data\(\) has no Beam counterpart"):
        translate(p)


def test_late_data_output_of_a_bounded_batch_job_translates_to_an_empty_output():
    p = beam.Pipeline()
    main, late = p | beam.Create([("a", 1)]) | "Sum" >> beam.CombinePerKey(sum).with_late_data("late")
    _ = late | "ShowLate" >> beam.Map(str)
    bp = translate(p)
    labels = {t.full_label for t in bp.transforms_stack[0].parts}
    assert {"Sum", "ShowLate"} <= labels
    (sum_step,) = [t for t in bp.transforms_stack[0].parts if t.full_label == "Sum"]
    assert "Sum/NoLateData" in {t.full_label for t in sum_step.parts}


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


def test_a_declared_type_hint_beam_refuses_fails_before_submission_naming_the_step():
    p = beam.Pipeline(options=PipelineOptions(["--no_pipeline_type_check"]))  # millstream's own check off
    _ = p | "Words" >> beam.Create(["a"]) | "Twice" >> beam.Map(lambda s: s * 2).with_input_types(int)
    with pytest.raises(UntranslatableError, match=r"^step 'Twice': Beam refuses its declared type hints: "):
        translate(p)
