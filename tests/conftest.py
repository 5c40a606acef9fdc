import sys, pathlib
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))


def pytest_collection_modifyitems(items):
    # The longest test first, so that with one worker per core (pytest.ini: -n auto) the others fill the
    # second core meanwhile instead of leaving it idle at the end.
    items.sort(key=lambda item: item.name != "test_vae_alone_locates_the_goal")
