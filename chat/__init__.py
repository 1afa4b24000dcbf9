"""Hawker chat package."""
