"""Hawker loadtest package."""
