"""How the API answers the service's refusals: one exception handler for every view.

- InvalidDefinition (the one validator) -> 400 {"problems": [{where, code, params, message}]},
  the same located problems the admin puts next to its fields;
- NotAllowed (the money and approver rules) -> 403 {"detail", "code"};
- bookmarks.FilterError -> 400 {"detail", "code", "params"}.
Anything else is DRF's own handling; an unexpected error is still a 500 (and a bug).
"""

from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import exception_handler

from automations.bookmarks import FilterError
from automations.problems import InvalidDefinition, message
from automations.workflows import NotAllowed


def problems_body(problems):
    return {"problems": [{**p.as_dict(), "message": message(p)} for p in problems]}


def handle(exc, context):
    if isinstance(exc, InvalidDefinition):
        return Response(problems_body(exc.problems), status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, NotAllowed):
        return Response(
            {"detail": exc.message, "code": exc.reason}, status=status.HTTP_403_FORBIDDEN
        )
    if isinstance(exc, FilterError):
        return Response(
            {"detail": exc.message, "code": exc.code, "params": exc.params},
            status=status.HTTP_400_BAD_REQUEST,
        )
    return exception_handler(exc, context)
