"""The planner: turns the pipeline graph into runtime nodes grouped into stages.

A stage is a set of nodes run by one task. A node joins the stage of its inputs when all of them are in one
stage (so chains of stateless steps, aggregations and their consumers run as one synchronous pass over a
batch); a node whose inputs come from several stages, or that awaits (an async DoFn, a sink), starts a new
stage fed by a bounded channel. So does a node that would make its stage's longest chain deeper than
`MAX_FUSED_DEPTH`: a stage's nodes call each other recursively, and an unbounded chain would overflow
Python's stack.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from millstream.engine.model.combinefn import ListCombineFn
from millstream.engine.model.core import CombinePerKey, Create, Flatten, GroupByKey, ParDo, WindowInto
from millstream.engine.model.dofn import DoFn
from millstream.engine.model.options import MillstreamOptions, PipelineOptions
from millstream.engine.model.pipeline import AppliedPTransform, Pipeline
from millstream.engine.model.pvalue import PCollection
from millstream.engine.runtime.exec.clock import Clock, SystemClock
from millstream.engine.runtime.graph.batch import Batch, Watermark
from millstream.engine.runtime.graph.capabilities import AsyncNode
from millstream.engine.runtime.graph.node import Node
from millstream.engine.runtime.operators.pardo import ParDoNode
from millstream.engine.runtime.operators.runtime_typecheck import (
    combine_type_check,
    install_type_checks,
    runtime_type_check_requested,
)
from millstream.engine.runtime.operators.simple import FlattenNode, WindowIntoNode
from millstream.engine.runtime.operators.sources import CreateDriver, SourceDriver, SourceNode
from millstream.engine.runtime.windowing.fast.global_window import GlobalCombineNode

#: The most nodes one fused chain may hold. Each fused step costs a few Python frames per batch (push, the
#: operator's loop, emit) and as many per watermark; 50 keeps a stage well under the default recursion limit
#: of 1000 with room for user code, while chains this long are rare enough that the extra channel is free.
MAX_FUSED_DEPTH = 50


class ChannelSender(Node):
    """The last node of a stage on an edge to another stage: queues batches and watermarks for the channel."""

    def __init__(self, label: str, stage: Stage, target: Stage, entry: int) -> None:
        super().__init__(label)
        self.stage = stage
        self.target = target
        self.entry = entry
        self.stream: Any = None
        self.in_flight: Any = None

    def push(self, index: int, batch: Batch) -> None:
        self.in_flight.add()
        self.stage.outbox.append((self.stream, (self.entry, batch)))

    def on_input_watermark(self, micros: int) -> None:
        self.output_wm = micros
        self.in_flight.add()
        self.stage.outbox.append((self.stream, (self.entry, Watermark(micros))))


class Stage:
    """Nodes owned by one task: a source driver, or a channel whose messages go to entry nodes."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.nodes: list[Node] = []
        self.driver: SourceDriver | None = None
        self.entries: list[tuple[Node, int]] = []
        self.senders: list[ChannelSender] = []
        self.outbox: deque[tuple[Any, Any]] = deque()

    def __repr__(self) -> str:
        return f"Stage({self.name}: {[n.label for n in self.nodes]})"


class Plan:
    """The runtime graph of one pipeline run."""

    def __init__(self, clock: Clock, options: PipelineOptions) -> None:
        #: The job's processing-time clock (a FakeClock under TestStream).
        self.clock = clock
        self.options = options
        #: The checkpoint coordinator, when the job keeps durable state (set by the runner).
        self.coordinator: Any = None
        self.job_name = "millstream"
        self.state_dir: str | None = None
        #: The state store's cipher when the state is encrypted (`millstream.state.encryption`), set by the
        #: checkpointer.
        self.state_cipher: Any = None
        #: Channel messages sent but not yet processed, job-wide (set by the executor; checkpoints drain it).
        self.in_flight: Any = None
        self.stages: list[Stage] = []
        self.nodes: dict[str, Node] = {}
        self.producers: dict[int, tuple[Node, str | None]] = {}
        self.stage_of: dict[int, Stage] = {}
        #: Drain/stop requests (a JobControl; set by the Job).
        self.control: Any = None

    def node_for(self, pcoll: PCollection) -> tuple[Node, str | None]:
        """The node (and output tag) producing `pcoll`."""
        try:
            return self.producers[id(pcoll)]
        except KeyError:
            raise ValueError(f"{pcoll!r} is not part of this job's pipeline") from None

    def stage_of_node(self, node: Node) -> Stage:
        """The stage that runs `node`."""
        return self.stage_of[id(node)]


def plan_pipeline(pipeline: Pipeline, options: PipelineOptions) -> Plan:
    """Build the runtime graph for `pipeline`."""
    opts = options.view_as(MillstreamOptions)
    plan = Plan(SystemClock(), options)
    stage_of = plan.stage_of
    type_checks = runtime_type_check_requested(options)
    # id(node) -> the length of the longest fused chain ending at it, within its stage
    depth: dict[int, int] = {}
    for applied in pipeline.primitives():
        node, driver = _make_node(applied, opts, plan, type_checks)
        if type_checks and isinstance(node, ParDoNode) and isinstance(applied.transform, ParDo):
            install_type_checks(node, applied.transform)
        plan.nodes[applied.full_label] = node
        for tag, out in applied.outputs.items():
            plan.producers[id(out)] = (node, tag)
        inputs = _node_inputs(applied)
        upstream = [plan.producers[id(pc)] for pc in inputs]
        upstream_stages = {id(stage_of[id(n)]): stage_of[id(n)] for n, _ in upstream}
        own_stage = driver is not None or isinstance(node, AsyncNode) or len(upstream_stages) != 1
        chain = 1 + max((depth[id(n)] for n, _ in upstream), default=0)
        if own_stage or chain > MAX_FUSED_DEPTH:
            chain = 1
            stage = Stage(applied.full_label)
            stage.driver = driver
            plan.stages.append(stage)
        else:
            stage = next(iter(upstream_stages.values()))
        stage.nodes.append(node)
        stage_of[id(node)] = stage
        depth[id(node)] = chain
        for index, (producer, tag) in enumerate(upstream):
            pstage = stage_of[id(producer)]
            if pstage is stage:
                producer.connect(node, index, tag)
            else:
                entry = len(stage.entries)
                stage.entries.append((node, index))
                sender = ChannelSender(f"{producer.label}->{applied.full_label}", pstage, stage, entry)
                pstage.nodes.append(sender)
                pstage.senders.append(sender)
                stage_of[id(sender)] = pstage
                producer.connect(sender, 0, tag)
    return plan


def _node_inputs(applied: AppliedPTransform) -> list[PCollection]:
    transform = applied.transform
    main = [pc for pc in applied.inputs if isinstance(pc, PCollection)]
    if isinstance(transform, ParDo):
        return main[:1] + [s.pvalue for s in transform.side_inputs]
    return main


def _make_node(
    applied: AppliedPTransform, opts: Any, ctx: Plan, type_checks: bool = False
) -> tuple[Node, SourceDriver | None]:
    t = applied.transform
    label = applied.full_label
    inputs = [pc for pc in applied.inputs if isinstance(pc, PCollection)]
    if isinstance(t, Create):
        node = SourceNode(label)
        return node, CreateDriver(node, t.values, opts.batch_size, ctx)
    if isinstance(t, ParDo):
        side_windowings = [s.pvalue.windowing for s in t.side_inputs]
        from millstream.engine.model.splittable import SplittableDoFnRunner
        from millstream.engine.model.userstate import is_stateful_dofn

        if isinstance(t.fn, SplittableDoFnRunner):  # its wall-time watermark estimators read the job's clock
            t.fn.use_clock(ctx.clock)
            resumable = t.fn.resumable(t)
            if resumable is not None:  # checkpointed, split and deferred as a stateful DoFn keyed by element
                from millstream.engine.runtime.operators.splittable_pardo import SplittableParDoNode

                return SplittableParDoNode(label, resumable, inputs[0].windowing, side_windowings), None
        from millstream.engine.runtime.operators.stateful_pardo import StatefulParDoNode

        stateful, is_async = is_stateful_dofn(t.fn), t.is_async or getattr(t.fn, "is_async", False)
        if (stateful or is_async) and type(t.fn).process_batch is not DoFn.process_batch:
            raise TypeError(
                f"step '{label}' ({type(t.fn).__name__}): process_batch is supported in plain "
                f"ParDos, not in {'stateful' if stateful else 'async'} DoFns; define process instead"
            )
        if stateful:
            return StatefulParDoNode(label, t, inputs[0].windowing, side_windowings), None
        if is_async:
            from millstream.engine.runtime.operators.async_pardo import AsyncParDoNode

            return AsyncParDoNode(
                label, t, inputs[0].windowing, side_windowings, opts.async_concurrency
            ), None
        return ParDoNode(label, t, inputs[0].windowing, side_windowings), None
    if isinstance(t, (GroupByKey, CombinePerKey)):
        windowing = inputs[0].windowing
        fn = ListCombineFn() if isinstance(t, GroupByKey) else t.fn
        if (
            type_checks
        ):  # --runtime_type_check: the CombineFn checks its values (nothing is wrapped without it)
            fn = combine_type_check(fn, t, label)
        default_key = getattr(t, "default_key", None) if isinstance(t, CombinePerKey) else None
        late_tag = t.late_tag
        if windowing.is_global_default() and late_tag is None:
            from millstream.engine.model.core import _NO_DEFAULT
            from millstream.engine.runtime.windowing.fast.global_window import _NO_DEFAULT_KEY

            dk = _NO_DEFAULT_KEY if default_key is _NO_DEFAULT or isinstance(t, GroupByKey) else default_key
            return GlobalCombineNode(label, fn, isinstance(t, GroupByKey), dk), None
        from millstream.engine.runtime.windowing.operator import ReducerNode

        return ReducerNode(label, fn, windowing, ctx.clock, late_tag), None
    if isinstance(t, Flatten):
        return FlattenNode(label, max(1, len(inputs))), None
    if isinstance(t, WindowInto):
        return WindowIntoNode(label, t.windowing), None
    from millstream.engine.runtime.graph.registry import make_node

    return make_node(applied, opts, ctx)
