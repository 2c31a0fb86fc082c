"""Progress bars for bounded replays (Beam has none): ``--no_progress`` turns them off.

Bars (tqdm) show bytes and records read, rate and ETA, only when stderr is a terminal. The option is declared
by `ProgressOptions`; importing millstream registers it.
"""

from millstream.connectors.files.progress import ProgressBar, ProgressOptions, progress_wanted

__all__ = ["ProgressBar", "ProgressOptions", "progress_wanted"]
