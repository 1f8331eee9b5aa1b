"""Parameter sweeps on Dask with a resumable SQLite result store (``sdgmm sweep``)."""

from sdgmm.sweep.run import RunSummary, run_sweep
from sdgmm.sweep.spec import SweepSpec, from_dict, load

__all__ = ["RunSummary", "SweepSpec", "from_dict", "load", "run_sweep"]
