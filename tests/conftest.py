import pathlib
import sys

import torch

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
# One torch thread per test process, as the scripts default to: with one process per core (pytest.ini -n auto),
# a second thread would only wait for a core the other process holds.
torch.set_num_threads(1)


def pytest_collection_modifyitems(items):
    # The longest test first, so that with one worker per core (pytest.ini: -n auto) the others fill the
    # second core meanwhile instead of leaving it idle at the end.
    items.sort(key=lambda item: item.name != "test_vae_alone_locates_the_goal")
