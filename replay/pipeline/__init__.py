"""Pipeline specs → many runs (cached, resumable, local or Dask) → one dataset + sweep report."""

from replay.pipeline.spec import Job, Spec, load_spec, parse_spec
from replay.pipeline.sweep import PipelineResult, plan_spec, run_pipeline

__all__ = ["Job", "PipelineResult", "Spec", "load_spec", "parse_spec", "plan_spec", "run_pipeline"]
