"""Playbooks: browse the shipped playbooks, rendered, with their lint status."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from workbench.cases.playbooks import lint, load_playbooks
from workbench.ui.errors import shown
from workbench.ui.state import context

ws, actor = context()
st.title("Playbooks")

with shown("Playbooks"):
    books = list(load_playbooks().values())
    if not books:
        st.info("No playbooks found. They live in the project's playbooks/ folder as markdown files.")
        st.stop()
    problems = lint()
    by_book: dict[str, list] = {}
    for p in problems:
        by_book.setdefault(str(p["playbook"]), []).append(p)
    def _status(book_id: str) -> str:
        found = by_book.get(book_id, [])
        errors = sum(1 for p in found if p.get("level") == "error")
        return "ok" if not found else f"{errors} error(s), {len(found) - errors} warning(s)"

    table = pd.DataFrame([{**b.summary(), "lint": _status(b.id)} for b in books])
    st.dataframe(table[["id", "title", "version", "applies_to", "severity", "steps", "lint"]], hide_index=True)
    pick = st.selectbox("Open", [b.id for b in books], key="pb_pick",
                        format_func=lambda i: next(b.title for b in books if b.id == i))
    book = next(b for b in books if b.id == pick)
    issues = by_book.get(book.id, [])
    if issues:
        st.warning("Lint:  \n" + "  \n".join(f"{i.get('level')}: line {i.get('line') or '-'}: {i.get('message')}"
                                             for i in issues))
    else:
        st.success(f"Lint: ok · version {book.version} · sha256 {book.sha256[:12]}…")
    st.caption("Applies to: " + ", ".join(book.applies_to) + " · roles: " + ", ".join(book.roles))
    st.markdown(book.path.read_text(encoding="utf-8").split("---", 2)[-1])
