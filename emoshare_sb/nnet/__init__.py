"""Aggregators, heads and losses."""
