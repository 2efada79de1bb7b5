"""Start, watch and stop kernelpar clusters: the ``Cluster`` API, launchers and ``ipcluster``.

``Cluster`` (:mod:`.cluster`) is ipyparallel's ``ipyparallel.cluster.Cluster``;
launchers (:mod:`.launchers`) start the controller and engine processes; :mod:`.app`
is the ``ipcluster`` command line, which hands IPython 0.10's form (``ipcluster local -n
2``) to :mod:`.legacycli`.
"""

from .cluster import Cluster, ClusterRunning
from .launchers import (
    BaseLauncher,
    LauncherNotAvailable,
    LocalControllerLauncher,
    LocalEngineSetLauncher,
    NotRunning,
)

__all__ = [
    "Cluster", "ClusterRunning", "BaseLauncher", "LauncherNotAvailable", "LocalControllerLauncher",
    "LocalEngineSetLauncher", "NotRunning",
]
