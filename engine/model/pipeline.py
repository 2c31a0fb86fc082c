"""`Pipeline`: the graph of applied transforms; running it hands the graph to a runner chosen by name."""

from __future__ import annotations

import importlib
import typing
from collections.abc import Iterator
from typing import Any

from millstream.engine.model import typecheck
from millstream.engine.model.options import PipelineOptions, StandardOptions
from millstream.engine.model.ptransform import PTransform
from millstream.engine.model.pvalue import DoOutputsTuple, PBegin, PCollection, PValue

#: Runner names -> "module:attribute". Runners are plug-ins: the model never imports the runtime directly.
RUNNERS: dict[str, str] = {
    "MillstreamRunner": "millstream.engine.runtime.exec.runner:MillstreamRunner",
    # Beam's runners, through the translator (docs/runners.md); they need apache-beam (millstream[beam]).
    "PrismRunner": "millstream.engine.translate.beam.runner:PrismRunner",
    "PortableRunner": "millstream.engine.translate.beam.runner:PortableRunner",
    "DataflowRunner": "millstream.engine.translate.beam.runner:DataflowRunner",
    "FlinkRunner": "millstream.engine.translate.beam.runner:FlinkRunner",
    "SparkRunner": "millstream.engine.translate.beam.runner:SparkRunner",
}
#: Beam's local runner names, accepted as aliases: on one machine millstream *is* the direct runner.
RUNNER_ALIASES = {
    "millstream": "MillstreamRunner",
    "DirectRunner": "MillstreamRunner",
    "BundleBasedDirectRunner": "MillstreamRunner",
    "SwitchingDirectRunner": "MillstreamRunner",
    "FnApiRunner": "MillstreamRunner",
}


class AppliedPTransform:
    """One application of a transform in the graph: its full label, inputs, outputs and sub-steps."""

    def __init__(
        self, parent: AppliedPTransform | None, transform: PTransform | None, full_label: str, inputs: Any
    ) -> None:
        self.parent = parent
        self.transform = transform
        self.full_label = full_label
        self.inputs: tuple[PValue, ...] = _flatten_inputs(inputs)
        self.raw_inputs = inputs
        self.outputs: dict[str | None, PValue] = {}
        self.parts: list[AppliedPTransform] = []

    def is_primitive(self) -> bool:
        """True when the runtime executes this step itself: a primitive transform that did not expand into
        sub-steps (GroupByKey/CombinePerKey do when keys are grouped by a registered key coder)."""
        return self.transform is not None and self.transform.primitive and not self.parts

    def walk_primitives(self) -> Iterator[AppliedPTransform]:
        """Every primitive step under this node, in application order."""
        if self.is_primitive():
            yield self
            return
        for part in self.parts:
            yield from part.walk_primitives()

    def is_composite(self) -> bool:
        """True for a step made of sub-steps (the root, and every expanded composite); Beam's test."""
        return bool(self.parts) or all(
            getattr(out, "producer", None) is not self for out in self.outputs.values()
        )

    def visit(self, visitor: PipelineVisitor, visited: set[int]) -> None:
        """Walk this step for `visitor`, as Beam's AppliedPTransform.visit: the producers of its inputs first
        (once each), then the step itself (entered and left if composite), then its new outputs."""
        for value in self.inputs:
            if id(value) not in visited and not isinstance(value, PBegin):
                producer = getattr(value, "producer", None)
                if producer is not None:
                    producer.visit(visitor, visited)
        if self.is_composite():
            visitor.enter_composite_transform(self)
            for part in self.parts:
                part.visit(visitor, visited)
            visitor.leave_composite_transform(self)
        else:
            visitor.visit_transform(self)
        for out in self.outputs.values():
            if id(out) not in visited:
                visited.add(id(out))
                visitor.visit_value(out, self)

    def __repr__(self) -> str:
        return f"AppliedPTransform({self.full_label!r})"


class PipelineVisitor:
    """Visits a pipeline's steps and values (Beam's ``apache_beam.pipeline.PipelineVisitor``): subclass it and
    pass an instance to `Pipeline.visit`. Every method does nothing by default."""

    def visit_value(self, value: PValue, producer_node: AppliedPTransform) -> None:
        """Called once for every PValue, after the step that produced it."""

    def visit_transform(self, transform_node: AppliedPTransform) -> None:
        """Called for every primitive step."""

    def enter_composite_transform(self, transform_node: AppliedPTransform) -> None:
        """Called before the sub-steps of a composite step (the root included)."""

    def leave_composite_transform(self, transform_node: AppliedPTransform) -> None:
        """Called after the sub-steps of a composite step."""


def _flatten_inputs(inputs: Any) -> tuple[PValue, ...]:
    if isinstance(inputs, PValue):
        return (inputs,)
    if isinstance(inputs, dict):
        return tuple(v for v in inputs.values() if isinstance(v, PValue))
    if isinstance(inputs, (tuple, list)):
        return tuple(v for v in inputs if isinstance(v, PValue))
    return ()


class Pipeline:
    """A pipeline under construction; used as a context manager it runs when the `with` block ends."""

    def __init__(
        self,
        runner: Any = None,
        options: PipelineOptions | None = None,
        argv: list[str] | None = None,
        display_data: dict[str, Any] | None = None,
    ) -> None:
        if options is None:
            options = PipelineOptions(argv or [])
        elif not isinstance(options, PipelineOptions):
            raise TypeError(f"options must be PipelineOptions, got {type(options).__name__}")
        self._options = options
        self.runner = runner
        self.root = AppliedPTransform(None, None, "", ())
        self._current = self.root
        self._labels: set[str] = set()
        self._result: Any = None
        self.display_data = dict(display_data or {})
        self._checking_types: bool | None = None

    @property
    def options(self) -> PipelineOptions:
        """The options this pipeline runs with."""
        return self._options

    def apply(self, transform: Any, pvalueish: Any = None, label: str | None = None) -> Any:
        """Apply `transform` to `pvalueish` under `label`, recording it in the graph; returns its outputs."""
        if not isinstance(transform, PTransform):
            raise TypeError(
                f"expected a PTransform on the right of |, got {type(transform).__name__} {transform!r}"
            )
        from millstream.engine.model.ptransform import _NamedPTransform

        if isinstance(transform, _NamedPTransform):
            return self.apply(transform.transform, pvalueish, label or transform.label)
        if pvalueish is None or pvalueish is self:
            pvalueish = PBegin(self)
        label = label or transform.label
        full_label = f"{self._current.full_label}/{label}" if self._current.full_label else label
        if full_label in self._labels:
            raise RuntimeError(
                f'A transform with label "{full_label}" already exists in the pipeline. '
                'To apply a transform with a specified label write pvalue | "label" >> transform'
            )
        self._labels.add(full_label)
        checking = self._type_checking()
        if checking and isinstance(pvalueish, PCollection):
            typecheck.check_input(transform, pvalueish, label)
        node = AppliedPTransform(self._current, transform, full_label, pvalueish)
        self._current.parts.append(node)
        parent, self._current = self._current, node
        try:
            result = transform.expand(pvalueish)
        finally:
            self._current = parent
        for tag, out in _enumerate_outputs(result):
            if isinstance(out, PValue):
                if out.producer is None:
                    out.producer = node
                node.outputs[tag] = out
        if checking:
            if isinstance(result, PCollection):  # as Beam: a multi-output result's outputs are not checked
                typecheck.check_output(transform, result, label)
            _infer_output_type(transform, pvalueish, result)
        return result

    def _type_checking(self) -> bool:
        """Beam's ``pipeline_type_check`` option (on unless ``--no_pipeline_type_check``), read once."""
        checking = self._checking_types
        if checking is None:
            from millstream.engine.model.options import TypeOptions

            checking = bool(getattr(self._options.view_as(TypeOptions), "pipeline_type_check", True))
            self._checking_types = checking
        return checking

    def run(self, test_runner_api: Any = "AUTO") -> Any:
        """Run the pipeline on the runner named in the options; returns a PipelineResult.

        `test_runner_api` is accepted for Beam's signature; millstream runs the graph as built."""
        runner = self._resolve_runner()
        self._result = runner.run_pipeline(self, self._options)
        return self._result

    async def start(self) -> Any:
        """Start the pipeline inside the running event loop; returns a Job handle at once
        (`await job.wait()`, `drain()`, `stop()`, `cancel()`, `status()`, `metrics()`, `tap(pcoll)`)."""
        runner = self._resolve_runner()
        start = getattr(runner, "start_pipeline", None)
        if start is None:
            raise NotImplementedError(f"runner {type(runner).__name__} cannot start pipelines asynchronously")
        return await start(self, self._options)

    def _resolve_runner(self) -> Any:
        runner = self.runner
        if runner is None:
            runner = self._options.view_as(StandardOptions).runner
        if runner is None:
            runner = "MillstreamRunner"
        if not isinstance(runner, str):
            return runner
        name = RUNNER_ALIASES.get(runner, runner)
        target = RUNNERS.get(name)
        if target is None:
            raise ValueError(
                f"runner {runner!r} is not available: millstream runs pipelines on its own runner "
                f"(MillstreamRunner; {', '.join(sorted(RUNNER_ALIASES))} are accepted as aliases) and on "
                f"Beam's runners through translation ({', '.join(n for n in RUNNERS if n != 'MillstreamRunner')})."
            )
        module, attr = target.split(":")
        return getattr(importlib.import_module(module), attr)()

    def __enter__(self) -> Pipeline:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is None:
            self.run().wait_until_finish()

    def __or__(self, transform: Any) -> Any:
        if isinstance(transform, PTransform):
            return transform.__ror__(self)
        raise TypeError(
            f"expected a PTransform on the right of |, got {type(transform).__name__} {transform!r}"
        )

    def visit(self, visitor: PipelineVisitor) -> None:
        """Walk the graph in topological order for `visitor` (Beam's Pipeline.visit)."""
        if not isinstance(visitor, PipelineVisitor):
            raise TypeError(f"Pipeline.visit needs a PipelineVisitor, got {type(visitor).__name__}")
        self.root.visit(visitor, set())

    def primitives(self) -> list[AppliedPTransform]:
        """Every primitive step of the graph, in application (topological) order."""
        return list(self.root.walk_primitives())

    def __repr__(self) -> str:
        return f"<Pipeline with {len(self._labels)} steps>"


def _infer_output_type(transform: PTransform, pvalueish: Any, result: Any) -> None:
    """Give the main output the element type `transform` declares (its type variables bound by the input's
    type, unbound ones Any), or, for transforms that keep their elements (Filter, WindowInto, Flatten: the
    union of its inputs'), the input's type, or else the type Beam infers for it (`typecheck.inferred_output`:
    a Map's lambda, a GroupByKey's pairs ...). As Beam, only an output whose type is still unknown (or Any)
    gets one: a composite's output keeps the type its last step gave it."""
    main = result
    if isinstance(result, DoOutputsTuple):
        main = result[None]
    if not isinstance(main, PCollection):
        return
    actual = pvalueish.element_type if isinstance(pvalueish, PCollection) else _union_of(pvalueish)
    if main.element_type is not None and main.element_type is not Any:
        # as Beam: a composite's output keeps the type its last step gave it; what the composite declares is
        # for an output whose type is unknown
        return
    declared = typecheck.output_hint(transform)
    if declared is not None:
        bound_by = Any if actual is None else actual
        declared = typecheck.bind_type_variables(typecheck.input_hint(transform), bound_by, declared)
        main.element_type = typecheck.normalize(declared)
    elif actual is not None and typecheck.keeps_elements(transform):
        main.element_type = actual
    elif main.element_type is None and main is result:  # Beam infers no tagged (multi-output) ParDo's types
        main.element_type = typecheck.inferred_output(transform, actual)


def _union_of(pvalueish: Any) -> Any:
    """The union of the element types of several input PCollections (Beam's input type of Flatten), None when
    one is unknown or the input is not a tuple or list of PCollections."""
    if not isinstance(pvalueish, (tuple, list)) or not pvalueish:
        return None
    kinds = [pc.element_type if isinstance(pc, PCollection) else None for pc in pvalueish]
    if any(k is None for k in kinds):
        return None
    return typing.Union[tuple(kinds)]  # noqa: UP007 - a Union built from a tuple of hints


def _enumerate_outputs(result: Any) -> Iterator[tuple[str | None, Any]]:
    if isinstance(result, DoOutputsTuple):
        yield None, result[None]
        yield from result._tagged.items()
    elif isinstance(result, PValue):
        yield None, result
    elif isinstance(result, dict):
        for k, v in result.items():
            yield str(k), v
    elif isinstance(result, (tuple, list)):
        for i, v in enumerate(result):
            yield str(i), v


__all__ = ["Pipeline", "AppliedPTransform", "PCollection", "PipelineVisitor"]
