"""Runs in the formats other tools read: inspect_ai logs, Hugging Face datasets, pandas DataFrames."""
