"""Workbench: incident response for production AI systems."""

__version__ = "0.1.0"
