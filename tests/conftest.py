"""Test-suite settings: hypothesis runs derandomized by default, so CI is reproducible
(``HYPOTHESIS_PROFILE=explore`` draws fresh random examples each run, to hunt for new ones)."""
import os

from hypothesis import settings

settings.register_profile("ci", derandomize=True, database=None)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
