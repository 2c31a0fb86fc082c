"""Translating the pipeline graph into other engines' pipelines; imports the model, never the runtime."""
