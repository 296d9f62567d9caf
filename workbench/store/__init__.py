"""The workspace: one DuckDB file, its schema migrations, named SQL, and the one way to run queries."""

from workbench.store.workspace import Workspace, open_workspace

__all__ = ["Workspace", "open_workspace"]
