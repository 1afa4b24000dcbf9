"""Hawker live package."""
