"""API: saved filters, the bookmarks of admin lists, through automations/bookmarks.py.

The private/shared rules are the service's: a user sees their own filters and the shared
ones on lists they may view; someone else's private filter answers 404 like one that does
not exist; only the owner changes or deletes a filter (403 on a shared one of someone else).
"""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import permissions, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.pagination import CursorPagination
from rest_framework.response import Response

from automations import bookmarks
from automations.models import SavedFilter
from automations.redaction import redact_data

ROWS_LIMIT = 50
ROWS_MAX = 500


class SavedFilterPermissions(permissions.DjangoModelPermissions):
    """The model perms every role has for its own bookmarks, reading included."""

    perms_map = {
        **permissions.DjangoModelPermissions.perms_map,
        "GET": ["%(app_label)s.view_%(model_name)s"],
        "HEAD": ["%(app_label)s.view_%(model_name)s"],
        "OPTIONS": ["%(app_label)s.view_%(model_name)s"],
    }


class SavedFilterPagination(CursorPagination):
    ordering = ("-created_at", "-pk")


def saved_filter_row(saved_filter, request):
    """Return a saved filter as plain data, with its short URL and the list URL it opens."""
    return {
        "id": saved_filter.pk,
        "slug": saved_filter.slug,
        "name": saved_filter.name,
        "list": saved_filter.list,
        "query": saved_filter.query,
        "shared": saved_filter.shared,
        "owner": saved_filter.owner.get_username() if saved_filter.owner_id else None,
        "url": request.build_absolute_uri(bookmarks.url(saved_filter)),
        "list_url": request.build_absolute_uri(bookmarks.list_url(saved_filter)),
        "created_at": saved_filter.created_at,
        "updated_at": saved_filter.updated_at,
    }


class SavedFilterSerializer(serializers.Serializer):
    """A saved filter as the API answers it."""

    id = serializers.IntegerField(read_only=True)
    slug = serializers.CharField(read_only=True, help_text="Its stable short URL's key.")
    name = serializers.CharField(max_length=200)
    list = serializers.CharField(
        max_length=100, help_text="The admin list, as app_label.model_name (automations.run)."
    )
    query = serializers.CharField(
        allow_blank=True, required=False, default="", help_text="The list's query string."
    )
    shared = serializers.BooleanField(required=False, default=False)
    owner = serializers.CharField(read_only=True, allow_null=True)
    url = serializers.URLField(read_only=True, help_text="The short URL, /f/<slug>/.")
    list_url = serializers.URLField(read_only=True, help_text="The admin list it opens.")
    created_at = serializers.DateTimeField(read_only=True)
    updated_at = serializers.DateTimeField(read_only=True)


class SavedFilterChangeSerializer(serializers.Serializer):
    """What the owner may change: the name, sharing and the query (the list stays)."""

    name = serializers.CharField(max_length=200)
    query = serializers.CharField(allow_blank=True, required=False)
    shared = serializers.BooleanField(required=False)


class ListQuerySerializer(serializers.Serializer):
    list = serializers.CharField(
        required=False, max_length=100, help_text="Only the filters of this admin list."
    )


class RowsQuerySerializer(serializers.Serializer):
    limit = serializers.IntegerField(
        required=False,
        default=ROWS_LIMIT,
        min_value=1,
        max_value=ROWS_MAX,
        help_text=f"At most this many rows (default {ROWS_LIMIT}).",
    )


def _query(serializer_class, request):
    query = serializer_class(data=request.query_params)
    query.is_valid(raise_exception=True)
    return query.validated_data


class RowsSerializer(serializers.Serializer):
    rows = serializers.ListField(
        child=serializers.DictField(), help_text="The rows the list shows, in its order."
    )
    count = serializers.IntegerField(help_text="Every matching row, beyond `limit` too.")
    list = serializers.CharField()


class SavedFilterErrorSerializer(serializers.Serializer):
    detail = serializers.CharField()
    code = serializers.CharField(required=False, help_text="list_unknown, query_invalid, …")
    params = serializers.DictField(required=False)


class SavedFilterRefusalSerializer(serializers.Serializer):
    detail = serializers.CharField()


BAD_REQUEST = OpenApiResponse(
    OpenApiTypes.OBJECT,
    description="A bad list or query ({detail, code, params}), or field errors by field.",
)
FORBIDDEN = OpenApiResponse(
    SavedFilterRefusalSerializer, description="Only the owner may change it."
)
NOT_FOUND = OpenApiResponse(
    SavedFilterRefusalSerializer, description="No such filter that you may see."
)


NEEDS_A_LOOK = OpenApiExample(
    "Failed and held runs",
    value={
        "name": "Needs a look",
        "list": "automations.run",
        "query": "status__in=failed,held",
        "shared": True,
    },
    request_only=True,
)
RENAMED = OpenApiExample(
    "Rename and share",
    value={"name": "Team: needs a look", "query": "status__in=failed", "shared": True},
    request_only=True,
)


@extend_schema_view(
    list=extend_schema(
        summary="List your saved filters and the shared ones you may see",
        parameters=[ListQuerySerializer],
        responses={
            200: SavedFilterSerializer(many=True),
            400: BAD_REQUEST,
            403: FORBIDDEN,
            404: OpenApiResponse(SavedFilterRefusalSerializer, description="Invalid cursor."),
        },
    ),
    retrieve=extend_schema(
        summary="A saved filter", responses={200: SavedFilterSerializer, 404: NOT_FOUND}
    ),
    create=extend_schema(
        summary="Save a list's query as a filter you own",
        request=SavedFilterSerializer,
        examples=[NEEDS_A_LOOK],
        responses={201: SavedFilterSerializer, 400: BAD_REQUEST, 403: FORBIDDEN},
    ),
    update=extend_schema(
        summary="Rename, share or unshare, or change the query of your filter",
        request=SavedFilterChangeSerializer,
        examples=[RENAMED],
        responses={
            200: SavedFilterSerializer,
            400: BAD_REQUEST,
            403: FORBIDDEN,
            404: NOT_FOUND,
        },
    ),
    partial_update=extend_schema(
        summary="Change some of your filter's name, sharing or query",
        request=SavedFilterChangeSerializer(partial=True),
        responses={
            200: SavedFilterSerializer,
            400: BAD_REQUEST,
            403: FORBIDDEN,
            404: NOT_FOUND,
        },
    ),
    destroy=extend_schema(
        summary="Delete your filter",
        responses={204: None, 403: FORBIDDEN, 404: NOT_FOUND},
    ),
)
class SavedFilterViewSet(viewsets.GenericViewSet):
    """Saved filters: create, read, update and delete, with the private/shared rules."""

    queryset = SavedFilter.objects.none()  # the model, for the permission class
    permission_classes = [SavedFilterPermissions]
    pagination_class = SavedFilterPagination
    serializer_class = SavedFilterSerializer
    throttle_scope = "writes"
    list_label = None  # the list's ?list= filter, read (and checked) by `list`

    def get_queryset(self):
        # Someone else's private filter is not in here: a 404, as if it did not exist.
        return bookmarks.visible(self.request.user, self.list_label)

    def _row(self, saved_filter):
        return saved_filter_row(saved_filter, self.request)

    def list(self, request):
        self.list_label = _query(ListQuerySerializer, request).get("list")
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response([self._row(f) for f in page])

    def retrieve(self, request, pk=None):
        return Response(self._row(self.get_object()))

    def create(self, request):
        body = SavedFilterSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        saved = bookmarks.save(
            request.user, data["list"], data["query"], data["name"], shared=data["shared"]
        )
        return Response(self._row(saved), status=status.HTTP_201_CREATED)

    def _change(self, request, partial):
        saved_filter = self.get_object()
        body = SavedFilterChangeSerializer(data=request.data, partial=partial)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        bookmarks.update(
            request.user,
            saved_filter,
            name=data.get("name"),
            shared=data.get("shared"),
            query=data.get("query"),
        )
        return Response(self._row(saved_filter))

    def update(self, request, pk=None):
        return self._change(request, partial=False)

    def partial_update(self, request, pk=None):
        return self._change(request, partial=True)

    def destroy(self, request, pk=None):
        bookmarks.delete(request.user, self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        summary="The rows the filter selects, as its list shows them (for scripts)",
        parameters=[RowsQuerySerializer],
        responses={200: RowsSerializer, 400: BAD_REQUEST, 404: NOT_FOUND},
    )
    @action(detail=True, methods=["get"])
    def rows(self, request, pk=None):
        saved_filter = self.get_object()
        limit = _query(RowsQuerySerializer, request)["limit"]
        result = bookmarks.rows(saved_filter, limit=limit)
        # A payment intent's client secret is in its Stripe data: no answer carries one.
        return Response({**result, "rows": redact_data(result["rows"])})


def register(router):
    """Add this module's viewsets to the API router."""
    router.register("saved-filters", SavedFilterViewSet, basename="saved-filter")
