"""Test helpers that ship with safemlrm: a mock OpenAI-compatible server and synthetic runs."""
