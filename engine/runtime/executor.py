"""The executor: one task per stage in an anyio task group, bounded channels between stages."""

from __future__ import annotations

from typing import Any

import anyio
from anyio.abc import ObjectReceiveStream

from millstream.engine.model.metrics import MetricsContainer, set_current_container, set_current_step
from millstream.engine.runtime.batch import Watermark
from millstream.engine.runtime.node import PipelineError
from millstream.engine.runtime.planner import Plan, Stage


async def execute(plan: Plan, container: MetricsContainer, channel_capacity: int) -> None:
    """Run every stage of `plan` to completion; the first failure cancels the rest and is re-raised."""
    set_current_container(container)
    receivers: dict[int, ObjectReceiveStream[Any]] = {}
    for stage in plan.stages:
        if stage.entries:
            send, receive = anyio.create_memory_object_stream[Any](max_buffer_size=channel_capacity)
            receivers[id(stage)] = receive
            for other in plan.stages:
                for sender in other.senders:
                    if sender.target is stage:
                        sender.stream = send.clone()
            send.close()
    try:
        async with anyio.create_task_group() as tg:
            for stage in plan.stages:
                tg.start_soon(_run_stage, stage, receivers.get(id(stage)), name=f"stage {stage.name}")
    except BaseExceptionGroup as group:
        err = _first_error(group)
        raise err from err.__cause__
    finally:
        set_current_container(None)


def _first_error(group: BaseExceptionGroup) -> BaseException:
    """The user-facing error of a failed run: the first PipelineError, else the first error."""
    leaves: list[BaseException] = []

    def walk(e: BaseException) -> None:
        if isinstance(e, BaseExceptionGroup):
            for sub in e.exceptions:
                walk(sub)
        else:
            leaves.append(e)

    walk(group)
    for e in leaves:
        if isinstance(e, PipelineError) or getattr(e, "millstream_step", None) is not None:
            return e
    return leaves[0]


async def _flush(stage: Stage) -> None:
    outbox = stage.outbox
    while outbox:
        stream, message = outbox.popleft()
        await stream.send(message)


async def _run_stage(stage: Stage, receive: ObjectReceiveStream[Any] | None) -> None:
    opened = []
    try:
        for node in stage.nodes:
            set_current_step(node.label)
            node.open()
            opened.append(node)
        if stage.driver is not None:
            await stage.driver.run(lambda: _flush(stage))
        if receive is not None:
            entries = stage.entries
            async with receive:
                async for entry, message in receive:
                    node, index = entries[entry]
                    if type(message) is Watermark:
                        node.watermark(index, message.micros)
                    else:
                        node.push(index, message)
                    if getattr(node, "is_async_node", False):
                        await node.run_pending()  # type: ignore[attr-defined]
                    if stage.outbox:
                        await _flush(stage)
        await _flush(stage)
    finally:
        for sender in stage.senders:
            if sender.stream is not None:
                sender.stream.close()
        for node in opened:
            node.close()
