from automations.models.filters import SavedFilter
from automations.models.kinds import TriggerKind
from automations.models.runs import Approval, Batch, Run, RunStep
from automations.models.sync import Reconciliation, SyncCursor
from automations.models.workflows import Condition, Step, Workflow, WorkflowVersion

__all__ = [
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
