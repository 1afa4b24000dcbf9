"""Hawker inventory package."""
