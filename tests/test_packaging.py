"""What ships and what installs: the licence matches setup.cfg, and a server install carries no test tools."""
import configparser
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def setup_cfg():
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    return config


def test_license_file_matches_setup_cfg():
    """setup.cfg says MIT and ships LICENSE, which is the MIT licence text."""
    metadata = setup_cfg()["metadata"]
    assert metadata["license"] == "MIT" and metadata["license_files"] == "LICENSE"
    text = (ROOT / "LICENSE").read_text()
    assert text.startswith("MIT License") and "WITHOUT WARRANTY OF ANY KIND" in text
    assert "## [Unreleased]" in (ROOT / "CHANGELOG.md").read_text()


def test_run_service_installs_no_test_tools():
    """run-service's extras exist and exclude `test`; every Debian package names the extra that needs it."""
    extras = set(setup_cfg()["options.extras_require"])
    line = next(l for l in (ROOT / "scripts" / "run-service").read_text().splitlines()
                if "HARKEN_EXTRAS=" in l)
    service = set(re.search(r"HARKEN_EXTRAS:-([a-z,]+)", line).group(1).split(","))
    assert {"server", "speech", "analytics", "client"} <= service <= extras and "test" not in service
    packages = [l.split("#")[0].split() for l in (ROOT / "scripts" / "apt-packages.txt").read_text().splitlines()
                if l.split("#")[0].strip()]
    assert packages and all(len(p) == 2 and p[1] in extras for p in packages), packages
    on_a_server = {name for name, extra in packages if extra in service}
    assert not on_a_server & {"chromium", "sox", "espeak-ng"}, on_a_server
