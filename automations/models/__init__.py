from automations.models.filters import SavedFilter
from automations.models.kinds import TriggerKind
from automations.models.runs import Approval, Batch, Run, RunStep
from automations.models.sync import Reconciliation, SyncCursor
from automations.models.tokens import ApiToken
from automations.models.workflows import Condition, Step, Workflow, WorkflowVersion

__all__ = [
    "ApiToken",
    "Approval",
    "Batch",
    "Condition",
    "Reconciliation",
    "Run",
    "RunStep",
    "SavedFilter",
    "Step",
    "SyncCursor",
    "TriggerKind",
    "Workflow",
    "WorkflowVersion",
]
