"""The package list in setup.cfg names every package directory (it is a list, not find:)."""

import configparser
import os

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir)


def _package_dirs(top, name):
    found = set()
    for dirpath, _, files in os.walk(os.path.join(ROOT, top)):
        if "__init__.py" in files and "__pycache__" not in dirpath:
            rel = os.path.relpath(dirpath, os.path.join(ROOT, top))
            found.add(name if rel == "." else f"{name}.{rel.replace(os.sep, '.')}")
    return found


def test_every_package_directory_is_listed():
    cfg = configparser.ConfigParser()
    cfg.read(os.path.join(ROOT, "setup.cfg"))
    listed = set(cfg["options"]["packages"].split())
    assert _package_dirs("kernelpar", "kernelpar") | _package_dirs(os.path.join("compat", "kernelpar_compat"),
                                                                   "kernelpar_compat") == listed
