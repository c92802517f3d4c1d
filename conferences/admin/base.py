"""What every console page shares: bounded counts, read-only pages, staff as the actor, and
one message per object for every action."""

from collections.abc import Callable, Iterable

from django.contrib import admin, messages
from django.core.paginator import Paginator
from django.db import connection
from django.db.models import Count, IntegerField, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.utils.functional import cached_property

from ..actors import Actor
from ..errors import ServiceError


def staff_actor(request) -> Actor:
    return Actor.staff(request.user.get_username())


class CappedCountPaginator(Paginator):
    """Counts at most `cap` + 1 rows (the page shows "more than 10000"): a changelist over a
    million rows never runs a full COUNT(*)."""

    cap = 10_000

    @cached_property
    def count(self) -> int:
        return self.object_list[: self.cap + 1].count()


# "Select all" runs an action on every row the list matches: at most this many at once.
MAX_ACTION_ROWS = 1000


class SuperuserManages:
    """Apps, keys and secrets are the superusers' (SPEC 10): actions with permissions=["manage"]."""

    def has_manage_permission(self, request) -> bool:
        return request.user.is_superuser


class ConsoleAdmin(admin.ModelAdmin):
    paginator = CappedCountPaginator
    show_full_result_count = False  # the second, unfiltered count
    list_per_page = 50
    list_max_show_all = 200
    ordering = ["-id"]  # newest first, along the primary key

    def search(self, queryset, term: str):
        """Exact lookups through indexes, in place of Django's ILIKE over every search field."""
        raise NotImplementedError

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()  # (a NUL never gets here: RefuseNulCharactersMiddleware answers 400)
        if not term:
            return queryset, False
        if type(self).search is ConsoleAdmin.search:
            return super().get_search_results(request, queryset, term)
        return self.search(queryset, term), False

    def response_action(self, request, queryset):
        if request.POST.get("select_across") == "1" and queryset[: MAX_ACTION_ROWS + 1].count() > MAX_ACTION_ROWS:
            self.message_user(
                request,
                f"Not done: an action takes at most {MAX_ACTION_ROWS} rows at once; narrow "
                "the list with a search or a filter.",
                messages.ERROR,
            )
            return None  # back to the list
        return super().response_action(request, queryset)

    def report(self, request, objects: Iterable, act: Callable[[object], str]) -> None:
        """Run `act` on each object: one message each, saying what was done or why not."""
        for obj in objects:
            try:
                done = act(obj)
            except ServiceError as exc:
                self.message_user(
                    request, f"{obj}: not done, {exc.message[:1].lower()}{exc.message[1:]}.", messages.WARNING
                )
            else:
                self.message_user(request, f"{obj}: {done}.", messages.SUCCESS)


class ReadOnlyInline(admin.TabularInline):
    """Related rows on an object's page, each linking to its own page; never edited there."""

    extra = 0
    can_delete = False
    show_change_link = True

    def get_readonly_fields(self, request, obj=None):
        return self.fields

    def has_add_permission(self, request, obj=None):
        return False


def count_per_row(related: QuerySet, by: str) -> Coalesce:
    """A column counting `related` rows (filtered on OuterRef("pk")) for each listed row."""
    counted = related.order_by().values(by).annotate(count=Count("pk")).values("count")
    return Coalesce(Subquery(counted, output_field=IntegerField()), 0)


class ReadOnlyAdmin(ConsoleAdmin):
    """History and records: nobody adds, changes or deletes them here, superusers included."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


def distinct_values(model, column: str, *, where: str = "TRUE") -> list[str]:
    """The distinct values of an indexed column, one index probe per value (a skip scan)
    instead of reading the whole table. `where` is the index's own condition, if partial."""
    table = connection.ops.quote_name(model._meta.db_table)
    column = connection.ops.quote_name(column)
    with connection.cursor() as cursor:
        cursor.execute(
            f"""WITH RECURSIVE found AS (
                    (SELECT {column} AS value FROM {table} WHERE {where} ORDER BY {column} LIMIT 1)
                    UNION ALL
                    SELECT (SELECT {column} FROM {table} WHERE {where} AND {column} > found.value
                            ORDER BY {column} LIMIT 1)
                    FROM found WHERE found.value IS NOT NULL
                ) SELECT value FROM found WHERE value IS NOT NULL"""
        )
        return [value for (value,) in cursor.fetchall()]


def indexed_values_filter(
    column: str, title: str, *, where: str = "TRUE", always: tuple[str, ...] = ()
) -> type[admin.SimpleListFilter]:
    """A list filter on `column` offering the values the table holds (found by skip scan)."""

    class IndexedValuesFilter(admin.SimpleListFilter):
        parameter_name = column

        def lookups(self, request, model_admin):
            values = sorted(set(always) | set(distinct_values(model_admin.model, column, where=where)))
            return [(value, value or "(none)") for value in values]

        def queryset(self, request, queryset):
            return queryset.filter(**{column: self.value()}) if self.value() is not None else queryset

    IndexedValuesFilter.title = title
    return IndexedValuesFilter
