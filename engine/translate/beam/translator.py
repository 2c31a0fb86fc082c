"""The translator: a millstream pipeline graph becomes the equivalent ``apache_beam`` pipeline, label for label.

Composite transforms become Beam composites with the same labels, and every primitive its Beam counterpart:
`Create`, `ParDo` (the user's DoFn wrapped, `dofns.wrap_dofn`; side inputs, tagged outputs and dead letters
kept), `GroupByKey`, `CombinePerKey` (the CombineFn wrapped), `Flatten`, `WindowInto` (the whole strategy,
`windowing.beam_window_into`), `TestStream`, and `Read`/`Write` through the IO a connector registered
(`hooks.register_beam_io`). Whatever cannot be translated raises `UntranslatableError` naming the step and
why, before anything is submitted.

>>> import millstream as ms
>>> p = ms.Pipeline()
>>> _ = p | "Nums" >> ms.Create([1, 2]) | "Sq" >> ms.Map(lambda x: x * x)
>>> bp = translate(p)
>>> sorted(t.full_label for t in bp.transforms_stack[0].parts)
['Nums', 'Sq']
"""

from __future__ import annotations

import copy
import importlib
from typing import Any

import apache_beam as beam
from apache_beam.transforms.window import TimestampedValue as BeamTimestampedValue

from millstream.engine.model import core, pvalue, testing_util, typecheck
from millstream.engine.model.io import Read, Write
from millstream.engine.model.legacy_io import BeamSinkAdapter, BoundedSourceAdapter
from millstream.engine.model.options import MillstreamOptions, PipelineOptions, StandardOptions
from millstream.engine.model.pipeline import AppliedPTransform, Pipeline
from millstream.engine.model.test_stream import ElementEvent, ProcessingTimeEvent, TestStream, WatermarkEvent
from millstream.engine.model.timestamp import MAX_MICROS
from millstream.engine.model.window import GlobalWindows
from millstream.engine.translate.beam.dofns import (
    BeamCombineFn,
    UntranslatableError,
    split_arguments,
    to_beam_micros,
    to_beam_timestamp,
    wrap_dofn,
)
from millstream.engine.translate.beam.hooks import beam_io_target
from millstream.engine.translate.beam.legacy import BeamBoundedSource, BeamSink
from millstream.engine.translate.beam.windowing import beam_window_into


class _Context:
    """The Beam pipeline being built and the Beam PCollection of every millstream PCollection."""

    def __init__(self, bp: beam.Pipeline, concurrency: int, streaming: bool = False) -> None:
        self.bp = bp
        self.concurrency = concurrency
        #: --streaming: bounded sources advance the watermark while they are read (late data can occur)
        self.streaming = streaming
        self.pcolls: dict[int, Any] = {}
        #: > 0 while translating the parts of an `assert_that`: their outputs are marked bounded
        self.asserting = 0

    def get(self, pc: Any, where: str) -> Any:
        try:
            return self.pcolls[id(pc)]
        except KeyError:
            raise UntranslatableError(
                f"step '{where}': its input {pc!r} was not produced by a translated step"
            ) from None

    def beam_input(self, raw: Any, where: str) -> Any:
        """The Beam form of a transform's (raw) input: the pipeline for roots, else the mapped PCollections."""
        if isinstance(raw, pvalue.PCollection):
            return self.get(raw, where)
        if isinstance(raw, (tuple, list)) and all(isinstance(v, pvalue.PCollection) for v in raw) and raw:
            return tuple(self.get(v, where) for v in raw)
        if isinstance(raw, dict) and raw and all(isinstance(v, pvalue.PCollection) for v in raw.values()):
            return {k: self.get(v, where) for k, v in raw.items()}
        return self.bp

    def bind(self, node: AppliedPTransform, result: Any) -> None:
        """Record the Beam outputs of `node`: `result` is one PCollection or a mapping tag -> PCollection."""
        outputs = {t: v for t, v in node.outputs.items() if isinstance(v, pvalue.PCollection)}
        if not outputs:
            return
        if isinstance(result, beam.pvalue.PCollection):
            if len(outputs) != 1:
                raise UntranslatableError(f"step '{node.full_label}': {len(outputs)} outputs, Beam gave one")
            self.pcolls[id(next(iter(outputs.values())))] = result
            return
        for tag, pc in outputs.items():
            self.pcolls[id(pc)] = result[tag]


class _Composite(beam.PTransform):
    """A millstream composite as a Beam composite: its expansion translates the parts."""

    def __init__(self, node: AppliedPTransform, ctx: _Context) -> None:
        super().__init__(node.full_label.rsplit("/", 1)[-1])
        self._node = node
        self._ctx = ctx

    def expand(self, pvalueish: Any) -> Any:
        # As Beam's own assert_that: the collected values of a (possibly unbounded) PCollection are bounded,
        # else Beam refuses the global-window grouping that gathers them ("GroupByKey cannot be applied to an
        # unbounded PCollection with global windowing and a default trigger").
        asserting = isinstance(self._node.transform, testing_util._AssertThat)
        self._ctx.asserting += asserting
        try:
            for part in self._node.parts:
                _translate_node(part, self._ctx)
        finally:
            self._ctx.asserting -= asserting
        outs = {t: v for t, v in self._node.outputs.items() if isinstance(v, pvalue.PCollection)}
        if not outs:
            return beam.pvalue.PDone(self._ctx.bp)
        beam_outs = {t: self._ctx.get(v, self._node.full_label) for t, v in outs.items()}
        if list(beam_outs) == [None]:
            return beam_outs[None]
        return {("main" if t is None else t): v for t, v in beam_outs.items()}


def _translate_node(node: AppliedPTransform, ctx: _Context) -> None:
    label = node.full_label.rsplit("/", 1)[-1]
    beam_in = ctx.beam_input(node.raw_inputs, node.full_label)
    if not node.is_primitive():
        composite = _with_hints(_Composite(node, ctx), node.transform, node.full_label)
        result = _apply(beam_in, label, composite, node.full_label)
        if isinstance(result, dict):
            result = {(None if t == "main" else t): v for t, v in result.items()}
        if not isinstance(result, beam.pvalue.PDone):
            ctx.bind(node, result)
        return
    primitive = _primitive(node, ctx)
    result = _apply(beam_in, label, primitive, node.full_label)
    if ctx.asserting:
        for out in result.values() if isinstance(result, dict) else (result,):
            if isinstance(out, beam.pvalue.PCollection):
                out.is_bounded = True
    ctx.bind(node, result)


def _apply(beam_in: Any, label: str, transform: beam.PTransform, full_label: str) -> Any:
    """``beam_in | label >> transform``; Beam's construction-time type check failing names the step."""
    from apache_beam.typehints.decorators import TypeCheckError as BeamTypeCheckError

    try:
        return beam_in | label >> transform
    except BeamTypeCheckError as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise UntranslatableError(
            f"step '{full_label}': Beam refuses its declared type hints: {first}"
        ) from e


def _with_hints(beam_t: Any, ms_t: Any, full_label: str) -> Any:
    """`beam_t` declaring the element types `ms_t` declares (``with_input_types``/``with_output_types``, the
    decorators, a DoFn's or Map function's annotations), so Beam's coders and type checks see them."""
    hints = (("input", typecheck.input_hint(ms_t)), ("output", typecheck.output_hint(ms_t)))
    for kind, hint in hints:
        if hint is None:
            continue
        try:
            beam_t = getattr(beam_t, f"with_{kind}_types")(hint)
        except Exception as e:  # a hint Beam cannot convert: say which and where, before submission
            raise UntranslatableError(
                f"step '{full_label}': Beam refuses its declared {kind} type {hint!r}: {e}"
            ) from e
    return beam_t


def _side_input(arg: Any, ctx: _Context, where: str) -> Any:
    if not isinstance(arg, pvalue.AsSideInput):
        return arg
    pc = ctx.get(arg.pvalue, where)
    if isinstance(arg, pvalue.AsSingleton):
        if arg.default_value is pvalue._NO_DEFAULT:
            return beam.pvalue.AsSingleton(pc)
        return beam.pvalue.AsSingleton(pc, default_value=arg.default_value)
    for ms_kind, beam_kind in (
        (pvalue.AsIter, beam.pvalue.AsIter),
        (pvalue.AsList, beam.pvalue.AsList),
        (pvalue.AsDict, beam.pvalue.AsDict),
        (pvalue.AsMultiMap, beam.pvalue.AsMultiMap),
    ):
        if type(arg) is ms_kind:
            return beam_kind(pc)
    raise UntranslatableError(f"step '{where}': side input {type(arg).__name__} has no Beam counterpart")


class _TaggedParDo(beam.PTransform):
    """A Beam ParDo with millstream's output shape: one PCollection, or a dict tag -> PCollection."""

    def __init__(self, pardo: beam.ParDo, node: AppliedPTransform, transform: core.ParDo) -> None:
        super().__init__()
        self._pardo, self._node, self._t = pardo, node, transform

    def expand(self, pcoll: Any) -> Any:
        t = self._t
        if t.exception_handling is not None:
            eh = t.exception_handling
            good, bad = pcoll | self._pardo.with_exception_handling(
                eh.main_tag,
                eh.dead_letter_tag,
                exc_class=eh.exc_class,
                partial=eh.partial,
                on_failure_callback=eh.on_failure_callback,
            )
            return {"main": good, eh.dead_letter_tag: bad}
        if t.output_tags is None:
            return pcoll | self._pardo
        tags = [tag for tag in self._node.outputs if tag is not None]
        result = pcoll | self._pardo.with_outputs(*tags, main=t.main_tag)
        main = result[t.main_tag] if t.main_tag is not None else result[None]
        return {"main": main, **{tag: result[tag] for tag in tags}}


class _Bound(beam.PTransform):
    """A primitive whose Beam form is a function of the Beam input (for results shaped by tag)."""

    def __init__(self, build: Any) -> None:
        super().__init__()
        self._build = build

    def expand(self, pvalueish: Any) -> Any:
        return self._build(pvalueish)


def _untag(result: Any) -> Any:
    if isinstance(result, dict):
        return {(None if t == "main" else t): v for t, v in result.items()}
    return result


def _primitive(node: AppliedPTransform, ctx: _Context) -> beam.PTransform:
    t = node.transform
    where = f"step '{node.full_label}'"
    if isinstance(t, core.Create):
        return beam.Create(t.values)
    if isinstance(t, core.ParDo):
        args = tuple(_side_input(a, ctx, node.full_label) for a in t.args)
        kwargs = {k: _side_input(v, ctx, node.full_label) for k, v in t.kwargs.items()}
        pardo = beam.ParDo(wrap_dofn(t.fn, ctx.concurrency, node.full_label), **split_arguments(args, kwargs))
        pardo = _with_hints(pardo, t, node.full_label)
        return _Bound(lambda pc: _untag(pc | _TaggedParDo(pardo, node, t)))
    if isinstance(t, (core.GroupByKey, core.CombinePerKey)) and t.late_tag is not None:
        return _without_late_data(node, ctx, where)
    if isinstance(t, core.GroupByKey):
        return beam.GroupByKey()
    if isinstance(t, core.CombinePerKey):
        fn = BeamCombineFn(t.fn)
        if t.default_key is core._NO_DEFAULT:
            return beam.CombinePerKey(fn)
        return _Bound(lambda pc: _combine_with_default(pc, fn, t.default_key, node))
    if isinstance(t, core.Flatten):
        return beam.Flatten(pipeline=ctx.bp)
    if isinstance(t, core.WindowInto):
        return beam_window_into(t.windowing, where)
    if isinstance(t, TestStream):
        return _test_stream(t, ctx, where)
    if isinstance(t, Read):
        return _read(t, where)
    if isinstance(t, Write):
        if isinstance(t.sink, BeamSinkAdapter):  # a legacy Sink: Beam's own Write runs its protocol
            return beam.io.Write(BeamSink(t.sink.sink))
        return _io(t, t.sink, where)
    raise UntranslatableError(f"{where}: {type(t).__name__} has no Beam counterpart in the translation")


def _combine_with_default(pc: Any, fn: BeamCombineFn, key: Any, node: AppliedPTransform) -> Any:
    """CombinePerKey that also emits (key, combine of nothing) when the input is empty (CombineGlobally)."""
    combined = pc | "Combine" >> beam.CombinePerKey(fn)
    first = node.inputs[0] if node.inputs else None
    windowing = first.windowing if isinstance(first, pvalue.PCollection) else None
    if windowing is not None and not isinstance(windowing.windowfn, GlobalWindows):
        return combined

    def default(_: Any, seen: list[Any]) -> Any:
        if seen:
            return []
        return [(key, fn.extract_output(fn.create_accumulator()))]

    defaults = (
        pc.pipeline
        | "DefaultSeed" >> beam.Create([None])
        | "Default" >> beam.FlatMap(default, beam.pvalue.AsList(combined))
    )
    return (combined, defaults) | "WithDefault" >> beam.Flatten()


def _test_stream(t: TestStream, ctx: _Context, where: str) -> beam.PTransform:
    """Beam's TestStream with the same events; a tagged stream's outputs keyed as millstream keys them
    (``str(tag)``: "None" for the untagged events)."""
    from apache_beam.testing.test_stream import TestStream as BeamTestStream
    from apache_beam.utils.timestamp import Duration as BeamDuration
    from apache_beam.utils.timestamp import Timestamp as BeamTimestamp

    coder = _test_stream_coder(t)
    options = ctx.bp.options
    runner = str(options.get_all_options().get("runner") or "") if options is not None else ""
    if t.tagged and _is_portable(runner) and not isinstance(coder, beam.coders.VarIntCoder):
        raise UntranslatableError(
            f"{where}: Prism drops the output tags of a TestStream's elements unless they are all integers "
            f"(it length-prefixes their coder), and {runner} is a portable runner, which may be Prism behind a "
            "job endpoint; emit integers and map them after the stream, or use one output"
        )
    ts = BeamTestStream(coder=coder)
    for event in t.events:
        if isinstance(event, ElementEvent):
            ts.add_elements(
                [
                    BeamTimestampedValue(v.value, BeamTimestamp(micros=to_beam_micros(v.micros)))
                    for v in event.timestamped_values
                ],
                tag=event.tag,
            )
        elif isinstance(event, WatermarkEvent):
            if event.micros >= MAX_MICROS:
                ts.advance_watermark_to_infinity(tag=event.tag)
            else:
                ts.advance_watermark_to(BeamTimestamp(micros=to_beam_micros(event.micros)), tag=event.tag)
        elif isinstance(event, ProcessingTimeEvent):
            ts.advance_processing_time(BeamDuration(micros=event.micros))
    if not t.tagged:
        return ts
    typed = int if isinstance(coder, beam.coders.VarIntCoder) else None

    def outputs(pb: Any) -> Any:
        pcolls = pb | "TestStream" >> ts
        if typed is not None:
            for pc in pcolls.values():
                pc.element_type = typed  # so that the outputs' coder is the payload's
        return {str(tag): pc for tag, pc in pcolls.items()}

    return _Bound(outputs)


def _is_portable(runner: str) -> bool:
    """Whether Beam's runner named `runner` submits through a portable job service (Prism, or any job endpoint
    behind `PortableRunner`, Flink's, Spark's), judged by its class rather than its name."""
    if not runner:
        return False
    from apache_beam.runners.portability.portable_runner import PortableRunner
    from apache_beam.runners.runner import create_runner

    try:
        return isinstance(create_runner(runner), PortableRunner)
    except (ValueError, ImportError):  # a runner Beam does not know is refused when it is created, not here
        return False


def _test_stream_coder(t: TestStream) -> Any:
    """Beam's coder for the stream's elements: for a tagged stream of integers VarIntCoder (Prism keeps the tags
    of such a stream; it drops the element tags of a stream whose coder it length-prefixes: see
    docs/runners.md), else Beam's default."""
    values = [v.value for e in t.events if isinstance(e, ElementEvent) for v in e.timestamped_values]
    if t.tagged and values and all(type(v) is int and -(2**63) <= v < 2**63 for v in values):
        return beam.coders.VarIntCoder()
    return beam.coders.FastPrimitivesCoder()


def _io(t: Any, obj: Any, where: str) -> beam.PTransform:
    target = beam_io_target(obj)
    if target is None:
        raise UntranslatableError(
            f"{where}: {type(obj).__name__} has no Beam IO (no connector registered one with register_beam_io)"
        )
    module, attr = target.split(":")
    result: beam.PTransform = getattr(importlib.import_module(module), attr)(t, beam)
    return result


def _without_late_data(node: AppliedPTransform, ctx: _Context, where: str) -> beam.PTransform:
    """A grouping with ``with_late_data()`` in a bounded batch job: its late output is provably empty (the
    watermark stays at -infinity until all input is read, locally and on Beam), so it becomes an empty
    PCollection. Anywhere else late data can occur and Beam drops it: refused."""
    t = node.transform
    assert isinstance(t, (core.GroupByKey, core.CombinePerKey))
    inputs = [pc for pc in node.inputs if isinstance(pc, pvalue.PCollection)]
    if ctx.streaming or not all(pc.is_bounded for pc in inputs):
        raise UntranslatableError(
            f"{where}: with_late_data() has no Beam counterpart (Beam drops late data); remove it to run on "
            "Beam (only a bounded batch job, which has no late data, keeps it, as an empty output)"
        )
    plain = copy.copy(node)
    without = copy.copy(t)
    without.late_tag = None
    plain.transform = without
    grouping = _primitive(plain, ctx)
    late_tag = t.late_tag

    def build(pc: Any) -> Any:
        main = pc | grouping
        return {"main": main, late_tag: pc.pipeline | "NoLateData" >> beam.Create([])}

    return _Bound(lambda pc: _untag(build(pc)))


def _read(t: Read, where: str) -> beam.PTransform:
    """A `Read` through the IO its connector registered, event times from `timestamp_fn`; with
    ``with_dead_letters(tag)`` the IO must give ``{"main": ..., tag: ...}`` (bad event times join the tag)."""
    if isinstance(t.source, BoundedSourceAdapter):  # a legacy BoundedSource: Beam's own Read splits it
        read: beam.PTransform = beam.io.Read(BeamBoundedSource(t.source.source))
    else:
        read = _io(t, t.source, where)
    timestamp_fn = t.timestamp_fn
    tag = t.dead_letter_tag
    if timestamp_fn is None and tag is None:
        return read
    fn: Any = timestamp_fn

    def stamp(value: Any) -> Any:
        return BeamTimestampedValue(value, to_beam_timestamp(fn(value)))

    def stamp_or_dead_letter(value: Any) -> Any:
        try:
            yield BeamTimestampedValue(value, to_beam_timestamp(fn(value)))
        except Exception as e:  # as the local source does: a value without an event time is a bad record
            reason = f"bad event time: {type(e).__name__}: {e}"
            split = getattr(t.source, "file_pattern", t.source.display_name())
            yield beam.pvalue.TaggedOutput(tag, {"split": split, "raw": value, "reason": reason})

    def build(pb: Any) -> Any:
        result = pb | "Read" >> read
        if tag is None:
            return result | "Timestamps" >> beam.Map(stamp)
        if not isinstance(result, dict) or tag not in result:
            raise UntranslatableError(
                f"{where}: with_dead_letters() on {type(t.source).__name__} has no Beam counterpart "
                "(its connector's Beam IO gives no dead-letter output)"
            )
        main, bad = result["main"], result[tag]
        if fn is None:
            return {"main": main, tag: bad}
        stamped = main | "Timestamps" >> beam.FlatMap(stamp_or_dead_letter).with_outputs(tag, main="main")
        return {"main": stamped["main"], tag: (bad, stamped[tag]) | "DeadLetters" >> beam.Flatten()}

    return _Bound(lambda pb: _untag(build(pb)))


def translate(
    pipeline: Pipeline, beam_options: Any = None, options: PipelineOptions | None = None
) -> beam.Pipeline:
    """The ``apache_beam.Pipeline`` equivalent to `pipeline` (not run); raises `UntranslatableError` early."""
    options = options or pipeline.options
    concurrency = options.view_as(MillstreamOptions).async_concurrency
    bp = beam.Pipeline(options=beam_options)
    ctx = _Context(bp, concurrency, bool(options.view_as(StandardOptions).streaming))
    for node in pipeline.root.parts:
        _translate_node(node, ctx)
    return bp


__all__ = ["UntranslatableError", "translate"]
