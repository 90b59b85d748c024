"""Reusable admin actions: a two-step confirmation in the shape of Django's delete_selected.

`confirm_selected` lists what will happen to the selected objects and acts only when
the person answers "yes" (`post=yes`) on that page. Retrying and cancelling runs, and
"Run workflow on selected…" on Stripe lists, are all built on it; bulk store credit
will be too.
"""

from django.contrib import admin, messages
from django.utils.translation import gettext as _t
from django.utils.translation import gettext_lazy as _

from automations import workflows
from automations.admin.base import page
from automations.engine import keys
from automations.models import Workflow
from automations.money import format_money

TEMPLATE = "admin/kanri/confirm_selected.html"


def confirm_selected(
    modeladmin,
    request,
    queryset,
    *,
    title,
    intro,
    rows,
    perform,
    skipped=(),
    extra=None,
    hidden=None,
    can_confirm=True,
    confirm_label=None,
):
    """Show what an action will do to the selected objects; on "yes", call `perform()`.

    `rows` and `skipped` are plain dicts ({"label", "detail"}) listing what will and will
    not be acted on; `hidden` holds values the confirmation must carry back (a chosen
    workflow, a request token); `extra` is more plain context for the page. `perform`
    returns the message to show. Returns None (back to the list) once done.
    """
    if request.POST.get("post") == "yes" and can_confirm:
        text = perform()
        if text:
            modeladmin.message_user(request, text, messages.SUCCESS)
        return None
    return page(
        modeladmin,
        request,
        TEMPLATE,
        title,
        intro=intro,
        rows=list(rows),
        skipped=list(skipped),
        selected=[str(pk) for pk in queryset.values_list("pk", flat=True)],
        action=request.POST.get("action", ""),
        hidden=hidden or {},
        can_confirm=can_confirm and bool(rows),
        confirm_label=confirm_label or _t("Yes, I'm sure"),
        action_checkbox_name=admin.helpers.ACTION_CHECKBOX_NAME,
        **(extra or {}),
    )


def _object_row(obj):
    data = obj.stripe_data or {}
    detail = []
    if isinstance(data.get("amount"), int) and data.get("currency"):
        detail.append(format_money(data["amount"], data["currency"]))
    for key in ("status", "email", "name"):
        if data.get(key):
            detail.append(str(data[key]))
    return {"label": obj.id, "detail": " · ".join(detail)}


def choose_workflow(modeladmin, request, queryset, choices, *, rows, none_text, title, intro):
    """Return (workflow, page) for an action that runs a chosen workflow on selected objects.

    The workflow is the one the request names, or the only one offered; `page` is the
    "which workflow?" page when there is a choice to make, and both are None after a
    message when nothing can run. A workflow named on a confirmed page that is no longer
    offered (paused meanwhile) stops the action: another is never run in its place.
    """
    if not choices:
        modeladmin.message_user(request, none_text, messages.WARNING)
        return None, None
    asked = request.POST.get("workflow")
    chosen = next((c for c in choices if str(c["id"]) == asked), None)
    if asked and chosen is None:
        modeladmin.message_user(request, workflows.reason_text("not_manual"), messages.ERROR)
        return None, None
    if chosen is None and len(choices) == 1:
        chosen = choices[0]
    if chosen is None:
        return None, confirm_selected(
            modeladmin,
            request,
            queryset,
            title=title,
            intro=intro,
            rows=rows,
            perform=lambda: None,
            can_confirm=False,
            extra={"workflow_choices": choices},
        )
    workflow = Workflow.objects.select_related("active_version").get(pk=chosen["id"])
    allowed, reason = workflows.can_run(request.user, workflow)
    if not allowed:
        modeladmin.message_user(request, workflows.reason_text(reason), messages.ERROR)
        return None, None
    return workflow, None


@admin.action(description=_("Run workflow on selected…"))
def run_workflow_on_selected(modeladmin, request, queryset):
    """Start a manual workflow on each selected Stripe object, after a dry-run of 3."""
    selected = list(queryset.order_by("pk"))
    choices = workflows.manual_workflows(modeladmin.kanri_object)
    workflow, choosing = choose_workflow(
        modeladmin,
        request,
        queryset,
        choices,
        rows=[_object_row(obj) for obj in selected],
        none_text=_t(
            "No active workflow runs on these objects. Create one whose trigger is "
            "“Run on selected objects”, and activate it."
        ),
        title=_t("Run which workflow?"),
        intro=_t("Choose the workflow to run on the %(count)d selected object(s).")
        % {"count": len(selected)},
    )
    if workflow is None:
        return choosing
    token = request.POST.get("kanri_token") or keys.new_request_token()
    ids = [obj.id for obj in selected]

    def perform():
        result = workflows.run_on(workflow, ids, request.user, token)
        started, rest = len(result["started"]), result["not_started"]
        text = _t("Started %(started)d run(s) of “%(name)s”.") % {
            "started": started,
            "name": workflow.name,
        }
        if rest:
            text += " " + _t(
                "%(count)d object(s) started nothing: their conditions do not match, or "
                "this request already started them."
            ) % {"count": rest}
        return text

    objects = [{**(obj.stripe_data or {}), "id": obj.id} for obj in selected[:3]]
    return confirm_selected(
        modeladmin,
        request,
        queryset,
        title=_t("Run “%(name)s” on %(count)d object(s)?")
        % {
            "name": workflow.name,
            "count": len(selected),
        },
        intro=_t(
            "Each selected object gets one run of this workflow, recorded as started by you. "
            "Below is what the first %(shown)d would do (nothing has been sent)."
        )
        % {"shown": len(objects)},
        rows=[_object_row(obj) for obj in selected],
        perform=perform,
        hidden={"workflow": workflow.pk, "kanri_token": token},
        extra={
            "workflow_choices": choices,
            "chosen_workflow": workflow.pk,
            "rehearsals": workflows.rehearse_on(workflow, objects),
        },
        confirm_label=_t("Yes, start %(count)d run(s)") % {"count": len(selected)},
    )
