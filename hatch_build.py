"""Build hook: compiles extract/_logparse.c (the access-log hot loop) with the machine's C
compiler whenever the package is installed (`uv sync`, `pip install .`), editable or not.
Needs a C compiler and the Python headers, nothing from the network."""

from __future__ import annotations

import os
import shlex
import subprocess
import sysconfig
from pathlib import Path

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

SOURCE = Path("extract") / "_logparse.c"


def compile_extension(root: Path) -> Path:
    """extract/_logparse<suffix>.so, built from its source (atomically: a running process
    keeps the library it loaded)."""
    source = root / SOURCE
    target = source.with_name("_logparse" + sysconfig.get_config_var("EXT_SUFFIX"))
    compiler = shlex.split(sysconfig.get_config_var("CC") or "cc")
    partial = target.with_suffix(".partial")
    command = [*compiler, "-O3", "-shared", "-fPIC", "-Wall"]
    command += ["-I", sysconfig.get_paths()["include"], str(source), "-o", str(partial)]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"compiling {SOURCE} failed:\n{shlex.join(command)}\n{result.stderr}")
    os.replace(partial, target)
    return target


class CustomBuildHook(BuildHookInterface):
    def initialize(self, version: str, build_data: dict) -> None:
        target = compile_extension(Path(self.root))
        build_data["pure_python"] = False
        build_data["infer_tag"] = True
        if version != "editable":  # an editable install imports it from the source tree
            build_data["force_include"][str(target)] = f"extract/{target.name}"
