"""``requirements.lock``: every package pinned, consistent with the ranges."""

import configparser

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from .conftest import REPO


def lock():
    """``{canonical name: version}`` of ``requirements.lock``."""
    pins = {}
    for line in (REPO / "requirements.lock").read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        requirement = Requirement(line)
        (spec,) = requirement.specifier
        assert spec.operator == "==", line
        pins[canonicalize_name(requirement.name)] = spec.version
    return pins


def requirement_lines(name):
    """The requirements of a requirements file (``-r`` lines left out)."""
    for line in (REPO / name).read_text().splitlines():
        line = line.split("#")[0].strip()
        if line and not line.startswith("-"):
            yield Requirement(line)


def install_requires():
    config = configparser.ConfigParser()
    config.read(REPO / "setup.cfg")
    options = config["options"]["install_requires"].split("\n")
    extras = config["options.extras_require"]
    for line in options + [v for k in extras for v in extras[k].split("\n")]:
        if line.strip():
            yield Requirement(line.strip())


def test_the_lock_pins_every_requirement_within_its_range():
    pins = lock()
    for requirement in [
        *requirement_lines("requirements.txt"),
        *requirement_lines("requirements-dev.txt"),
        *install_requires(),
    ]:
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{requirement} is not in requirements.lock"
        assert requirement.specifier.contains(pins[name], prereleases=True), (
            f"requirements.lock has {name}=={pins[name]}, outside {requirement}"
        )
    assert "emoshare-sb" not in pins  # the project itself is not pinned


def test_gradio_gets_a_pillow_it_accepts():
    assert int(lock()["pillow"].split(".")[0]) < 13  # gradio: pillow<13


def test_make_env_installs_with_the_lock():
    makefile = (REPO / "Makefile").read_text()
    assert "-r requirements-dev.txt -c requirements.lock" in makefile
    assert "requirements.lock" in makefile.split("$(STAMP):")[1].split("\n")[0]
