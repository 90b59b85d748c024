from automations.models.kinds import TriggerKind
from automations.models.runs import Run, RunStep
from automations.models.workflows import Condition, Step, Workflow, WorkflowVersion

__all__ = ["Condition", "Run", "RunStep", "Step", "TriggerKind", "Workflow", "WorkflowVersion"]
