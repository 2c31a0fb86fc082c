"""The pipeline model: Pipeline, PCollection, transforms, DoFn, windows, triggers, options. Knows no runtime."""
