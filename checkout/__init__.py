"""Hawker checkout package."""
