"""Helpers of the file connector tests: read a source the way the runtime does, with or without a restore."""

from __future__ import annotations

from typing import Any

import pytest

from millstream.options.pipeline_options import PipelineOptions


async def read_source(
    source: Any,
    batch_size: int = 7,
    positions: dict | None = None,
    max_batches: int | None = None,
    flags: tuple[str, ...] = (),
) -> tuple[list, list, dict]:
    """Values, bad records and final positions of reading `source` (from `positions`, at most `max_batches`)."""
    reader = source.create_reader(PipelineOptions([f"--batch_size={batch_size}", "--no_progress", *flags]))
    await reader.open(positions)
    values: list = []
    errors: list = []
    batches = 0
    try:
        while max_batches is None or batches < max_batches:
            batch = await reader.read()
            if batch is None:
                break
            batches += 1
            values.extend(batch.values)
            errors.extend(batch.errors)
        return values, errors, reader.positions()
    finally:
        await reader.close()


def source_of(transform: Any) -> Any:
    """The Source inside one of millstream.io's Read transforms."""
    return transform._read.source


@pytest.fixture
def read():
    """`read_source` as a fixture."""
    return read_source


@pytest.fixture
def source():
    """`source_of` as a fixture."""
    return source_of
