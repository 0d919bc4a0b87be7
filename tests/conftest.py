"""Suite-wide settings: every lp.compile in the tests runs the IR verifier after each pass
(LEPTON_DEBUG=1, read at each compile), so a pass that breaks a graph fails loudly, naming
itself and the node; compiled code is cached in a directory of this test session only, never
in the user's cache."""
import pytest


@pytest.fixture(scope="session")
def _session_cache(tmp_path_factory):
    return str(tmp_path_factory.mktemp("lepton-cache"))


@pytest.fixture(autouse=True)
def _suite_settings(monkeypatch, _session_cache):
    monkeypatch.setenv("LEPTON_DEBUG", "1")
    monkeypatch.setenv("LEPTON_CACHE_DIR", _session_cache)
