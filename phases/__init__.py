"""The phases of a MapReduce job — setup, map, reduce — and the whole workflow."""

from phases.agent import execute_agent
from phases.map_phase import load_work_items, plan_assignments, run_map_phase
from phases.reduce import ReduceOutcome, run_reduce_phase
from phases.results import AgentFailure, AgentResult, JobResult, MapResult, PhaseFailure
from phases.setup import SetupOutcome, run_setup_phase
from phases.workflow import JobError, run_workflow

__all__ = [
    "AgentFailure",
    "AgentResult",
    "JobError",
    "JobResult",
    "MapResult",
    "PhaseFailure",
    "ReduceOutcome",
    "SetupOutcome",
    "execute_agent",
    "load_work_items",
    "plan_assignments",
    "run_map_phase",
    "run_reduce_phase",
    "run_setup_phase",
    "run_workflow",
]
