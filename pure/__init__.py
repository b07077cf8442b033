"""Plain data and pure functions: workflows, work planning, expressions, interpolation, state.

Nothing in this package performs I/O; everything is data in, data out.
"""

from pure.dependency_analysis import CommandGraph, Dependency, Footprint, analyze_dependencies
from pure.expression_error import ExpressionError
from pure.field_path import MISSING, FieldPath, FieldPathError, parse_field_path, resolve
from pure.filters import Filter, evaluate_condition, parse_filter
from pure.interpolation import InterpolationError, interpolate, referenced_names, try_interpolate
from pure.job_state import (
    InvalidTransition,
    ItemFailed,
    ItemMerged,
    ItemRecord,
    ItemRetried,
    ItemSkipped,
    ItemStarted,
    ItemStatus,
    ItemSucceeded,
    JobEvent,
    JobPlanned,
    JobState,
    PhaseFinished,
    PhaseStarted,
    Progress,
    apply,
    fold,
    progress,
    remaining,
)
from pure.masking import mask
from pure.sorting import SortKey, SortSpec, parse_sort_by
from pure.work_planning import (
    PlanningError,
    WorkAssignment,
    plan_work,
    plan_work_assignments,
)
from pure.workflow import (
    ClaudeCommand,
    ErrorPolicy,
    MapConfig,
    OnFailure,
    SetupConfig,
    ShellCommand,
    Step,
    Workflow,
    WriteFileCommand,
)
from pure.workflow_error import Problem, WorkflowError
from pure.workflow_parsing import parse_workflow
from pure.workflow_resolution import effective_env, resolve_max_parallel

__all__ = [
    "MISSING",
    "ClaudeCommand",
    "CommandGraph",
    "Dependency",
    "ErrorPolicy",
    "ExpressionError",
    "FieldPath",
    "FieldPathError",
    "Filter",
    "Footprint",
    "InterpolationError",
    "InvalidTransition",
    "ItemFailed",
    "ItemMerged",
    "ItemRecord",
    "ItemRetried",
    "ItemSkipped",
    "ItemStarted",
    "ItemStatus",
    "ItemSucceeded",
    "JobEvent",
    "JobPlanned",
    "JobState",
    "MapConfig",
    "OnFailure",
    "PhaseFinished",
    "PhaseStarted",
    "PlanningError",
    "Problem",
    "Progress",
    "SetupConfig",
    "ShellCommand",
    "SortKey",
    "SortSpec",
    "Step",
    "WorkAssignment",
    "Workflow",
    "WorkflowError",
    "WriteFileCommand",
    "analyze_dependencies",
    "apply",
    "effective_env",
    "evaluate_condition",
    "fold",
    "interpolate",
    "mask",
    "parse_field_path",
    "parse_filter",
    "parse_sort_by",
    "parse_workflow",
    "plan_work",
    "plan_work_assignments",
    "progress",
    "referenced_names",
    "remaining",
    "resolve",
    "resolve_max_parallel",
    "try_interpolate",
]
