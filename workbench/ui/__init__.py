"""Streamlit-only helpers for the app (the core library never imports these)."""
