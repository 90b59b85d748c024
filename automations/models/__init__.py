from automations.models.alerts import AlertedRun, FailureAlert
from automations.models.filters import SavedFilter
from automations.models.kinds import TriggerKind
from automations.models.profiles import UserProfile
from automations.models.runs import Approval, Batch, Run, RunStep, TriggerEvent
from automations.models.sync import Reconciliation, SyncCursor
from automations.models.tokens import ApiToken
from automations.models.workflows import Condition, Step, Workflow, WorkflowVersion

__all__ = [
    "AlertedRun",
    "ApiToken",
    "Approval",
    "Batch",
    "Condition",
    "FailureAlert",
    "Reconciliation",
    "Run",
    "RunStep",
    "SavedFilter",
    "Step",
    "SyncCursor",
    "TriggerEvent",
    "TriggerKind",
    "UserProfile",
    "Workflow",
    "WorkflowVersion",
]
