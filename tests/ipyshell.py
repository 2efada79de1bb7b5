"""An in-process IPython shell for the magics tests: no history file, no colours."""

import contextlib

from IPython.core.interactiveshell import InteractiveShell
from traitlets.config import Config


@contextlib.contextmanager
def interactive_shell():
    """The InteractiveShell singleton, configured for tests; cleared when the block ends."""
    config = Config()
    config.HistoryManager.hist_file = ":memory:"
    config.InteractiveShell.colors = "NoColor"
    shell = InteractiveShell.instance(config=config)
    try:
        yield shell
    finally:
        InteractiveShell.clear_instance()
