"""Saved filter bookmarks on admin lists (being built: issue 9).

`SavedFiltersMixin` goes first in the bases of every list that offers "Save this filter"
(the Stripe lists and Runs).
"""


class SavedFiltersMixin:
    """Adds "Save this filter" and the saved-filter menu to a ModelAdmin's changelist."""
