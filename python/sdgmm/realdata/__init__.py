"""Real data: the linear probe of the paper on pretrained features (0-SD against soft / hard SD, tuned on
validation splits, scored on a clean test set), its data handling and plot, the mixture matched to features,
and image features. The estimator itself is :class:`sdgmm.estimator.SelfDistillationClassifier`."""

from sdgmm.realdata._data import Split, load_split, read_features
from sdgmm.realdata._mixture import MixtureFit, fit_mixture
from sdgmm.realdata._plot import plot_probe
from sdgmm.realdata._result import ProbeResult
from sdgmm.realdata._runner import METHODS, SELECTED, probe

__all__ = [
           "METHODS",
           "SELECTED",
           "MixtureFit",
           "ProbeResult",
           "Split",
           "fit_mixture",
           "load_split",
           "plot_probe",
           "probe",
           "read_features",
]
