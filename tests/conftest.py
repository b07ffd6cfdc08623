import os

pytest_plugins = ["realparts", "realray"]


def pytest_configure(config):
    # compiled epochs (mlplab.engine.aot_package) are cached in the ignored .pytest_cache, not in
    # the user's ~/.cache: kept between local runs, fresh in a clean clone
    if getattr(config, "cache", None) is not None:    # none with -p no:cacheprovider
        os.environ.setdefault("MLPLAB_CACHE_DIR", str(config.cache.mkdir("mlplab-compiled")))
