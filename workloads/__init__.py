"""LLM work as op graphs."""
