"""API: saved_filters (being built: issue 11)."""


def register(router):
    """Add this module's viewsets to the API router."""
