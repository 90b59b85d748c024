"""Kanri's three roles as Django groups, kept in step with the code after every migrate.

viewer   reads runs, the inventory, workflows and Stripe data; keeps saved filters;
editor   also edits, activates and pauses workflows, runs manual ones on selected Stripe
         objects, and retries, cancels or decides held runs;
approver also activates, pauses, deletes and runs on selected objects workflows that
         move money (automations/workflows.py decides), and approves or rejects runs held
         above a money cap.
"""

from django.contrib.auth.models import Group, Permission

VIEWER = "Kanri viewers"
EDITOR = "Kanri editors"
APPROVER = "Kanri approvers"

_VIEW = [
    "automations.view_workflow",
    "automations.view_workflowversion",
    "automations.view_run",
    "automations.view_runstep",
    "automations.view_condition",
    "automations.view_step",
    "automations.view_batch",
    "automations.view_approval",
    "automations.view_reconciliation",  # reconcile_events' reports
    # Everyone keeps their own saved filters (sharing one is the owner's choice).
    "automations.view_savedfilter",
    "automations.add_savedfilter",
    "automations.change_savedfilter",
    "automations.delete_savedfilter",
    # The Stripe data staff read, and run manual workflows on.
    "djstripe.view_charge",
    "djstripe.view_paymentintent",
    "djstripe.view_customer",
    "djstripe.view_subscription",
    "djstripe.view_invoice",
    "djstripe.view_refund",
    "djstripe.view_dispute",
    "djstripe.view_earlyfraudwarning",
    "djstripe.view_event",
    "djstripe.view_webhookeventtrigger",
]
_EDIT = [
    "automations.add_workflow",
    "automations.change_workflow",
    "automations.delete_workflow",
    "automations.add_step",
    "automations.change_step",
    "automations.delete_step",
    "automations.add_condition",
    "automations.change_condition",
    "automations.delete_condition",
    "automations.activate_workflow",
    "automations.retry_run",
    "automations.run_workflow",
]
_APPROVE = ["automations.approve_money_workflow", "automations.approve_run"]

ROLES = {
    VIEWER: _VIEW,
    EDITOR: _VIEW + _EDIT,
    APPROVER: _VIEW + _EDIT + _APPROVE,
}


def ensure_roles(**kwargs):
    """Create the groups and give each exactly its permissions (post_migrate receiver)."""
    for name, codenames in ROLES.items():
        group, _ = Group.objects.get_or_create(name=name)
        wanted = set()
        for dotted in codenames:
            app_label, codename = dotted.split(".")
            permission = Permission.objects.filter(
                content_type__app_label=app_label, codename=codename
            ).first()
            if permission:  # absent only while the app's own migrate is half-way
                wanted.add(permission)
        group.permissions.set(wanted)
