"""stub."""


def detect(ctx):
    """Stub."""
    return []
