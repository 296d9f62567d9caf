"""The errors the workbench shows to users as one clear line."""


class WorkbenchError(Exception):
    """A problem the user can act on; front ends print its message, never a traceback."""


class PermissionDenied(WorkbenchError):
    """The acting user's role does not allow the action."""


class WorkspaceBusy(WorkbenchError):
    """Another process holds the workspace file open for writing."""
