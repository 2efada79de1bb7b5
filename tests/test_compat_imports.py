"""Old import names (``import ipyparallel``, ``from IPython import parallel``) resolved to
kernelpar by the opt-in alias finder; each case in a fresh interpreter, so the test
process's own modules stay untouched."""

import os
import subprocess
import sys
import textwrap

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir)


def run(code, extra_path=None, timeout=120):
    env = dict(os.environ)
    paths = [os.path.join(ROOT, "compat"), ROOT] + ([extra_path] if extra_path else [])
    env["PYTHONPATH"] = os.pathsep.join(paths + [env.get("PYTHONPATH", "")])
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          env=env, timeout=timeout)


def test_aliases_are_the_kernelpar_modules():
    out = run("""
        import kernelpar_compat.enable
        import kernelpar, kernelpar.error, kernelpar.wire.serialize
        import ipyparallel as ipp
        import ipyparallel.error
        from ipyparallel.serialize import pack_apply
        from IPython import parallel
        assert ipp is kernelpar and parallel is kernelpar
        assert ipyparallel.error is kernelpar.error
        assert pack_apply is kernelpar.wire.serialize.pack_apply
        assert ipp.RemoteError is kernelpar.errors.RemoteError
        try:
            import ipyparallel.no_such_module
        except ImportError as e:
            print("refused:", e)
    """)
    assert out.returncode == 0, out.stderr
    assert "refused: ipyparallel.no_such_module stands for kernelpar.no_such_module" in out.stdout


def test_importing_kernelpar_installs_nothing():
    out = run("""
        import kernelpar
        try:
            import ipyparallel
        except ModuleNotFoundError:
            print("not aliased")
    """)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "not aliased"


def test_a_real_installed_module_is_never_shadowed(tmp_path):
    real = tmp_path / "ipyparallel"
    real.mkdir()
    (real / "__init__.py").write_text("REAL = True\n")
    out = run("""
        import warnings
        warnings.simplefilter("always")
        import kernelpar_compat.enable
        import ipyparallel
        print("real" if getattr(ipyparallel, "REAL", False) else "alias")
    """, extra_path=str(tmp_path))
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "real"
    assert "ipyparallel is installed: it is used, not kernelpar's alias of it" in out.stderr


def test_an_ipyparallel_script_runs_on_a_kernelpar_cluster(tmp_path):
    out = run(f"""
        import kernelpar_compat.enable
        import ipyparallel as ipp
        with ipp.Cluster(n=2, profile_dir={str(tmp_path / "profile_compat")!r}) as rc:
            print(sorted(rc[:].apply_sync(lambda: 6 * 7)), rc.load_balanced_view().map_sync(abs, [-1, -2]))
    """)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[42, 42] [1, 2]"
