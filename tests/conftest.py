"""Suite-wide settings: every lp.compile in the tests runs the IR verifier after each pass
(LEPTON_DEBUG=1, read at each compile), so a pass that breaks a graph fails loudly, naming
itself and the node."""
import pytest


@pytest.fixture(autouse=True)
def _verify_after_every_pass(monkeypatch):
    monkeypatch.setenv("LEPTON_DEBUG", "1")
