"""compat/kernelpar_compat: classic division (PY2-03 at the source level): the ``/`` rewrite,
``from __future__ import division``, the helpers' semantics on ints, floats and NumPy, and
the prelude that installs them (no cluster)."""

import builtins

import pytest

# first: it makes kernelpar_compat importable from the source tree (and skips without fissix)
from py2world import run, same_lines, src  # isort: skip

from kernelpar_compat.py2source import (
    CLASSIC_DIVISION_PRELUDE,
    DIV_HELPER,
    IDIV_HELPER,
    classic_div,
    classic_idiv,
    install_helpers,
    needs_translation,
    translate,
)

# ---------------------------------------------------------------------------------------------
# Classic division
# ---------------------------------------------------------------------------------------------

def test_classic_division_semantics():
    source = src('''
        a = 7/2
        b = 7.0/2
        c = -7/2
        d = 7//2
        e = 7 / 2.0
        f = 1/3 * 3
        g = 2**3/3
        h = (1 + 6) / 2 / 2
        n = 9
        n /= 2
        x = 9.0
        x /= 2
    ''')
    out = translate(source)
    assert same_lines(source, out)
    assert "d = 7//2" in out                    # // untouched
    ns = run(source)
    assert (ns["a"], ns["b"], ns["c"], ns["d"], ns["e"]) == (3, 3.5, -4, 3, 3.5)
    assert ns["f"] == 0 and ns["g"] == 2 and ns["h"] == 1
    assert ns["n"] == 4 and ns["x"] == 4.5


def test_future_division_respected():
    source = "from __future__ import division\na = 7/2\nb = 7//2\n"
    assert translate(source) is source
    ns = run(source)
    assert ns["a"] == 3.5 and ns["b"] == 3
    py2 = '"""doc"""\nfrom __future__ import division\nprint 7/2\n'
    assert "7/2" in translate(py2) and DIV_HELPER not in translate(py2)


def test_division_option_off():
    source = "a = 7/2\n"
    assert translate(source, division=False) is source
    assert not needs_translation(source, division=False)
    assert needs_translation(source)
    out = translate('print 7/2\n', division=False)
    assert out == "print(7/2)\n"


def test_division_rewrite_keeps_layout():
    source = "x = (a\n     / b)  # comment / not code\ns = 'a/b'\nt = arr[i/2]\n"
    out = translate(source)
    assert same_lines(source, out)
    assert "# comment / not code" in out and "'a/b'" in out
    ns = run(source, a=9, b=2, i=3, arr=[5, 6])
    assert ns["x"] == 4 and ns["s"] == "a/b" and ns["t"] == 6


def test_division_in_augmented_subscript_target():
    ns = run("a = [10, 20, 30]\ni = 3\na[i/2] /= 3\n")
    assert ns["a"] == [10, 6, 30]


def test_operator_div():
    ns = run("import operator\nx = operator.div(7, 2)\ny = reduce(operator.div, [100, 3, 2])\n")
    assert ns["x"] == 3 and ns["y"] == 16


def test_classic_div_helper_types():
    assert classic_div(7, 2) == 3 and classic_div(-7, 2) == -4
    assert classic_div(7.0, 2) == 3.5 and classic_div(7, 2.0) == 3.5
    assert classic_div(True, True) == 1
    assert classic_div(1 + 2j, 2) == 0.5 + 1j
    from fractions import Fraction
    assert classic_div(1, Fraction(3)) == Fraction(1, 3)
    with pytest.raises(ZeroDivisionError, match="integer division or modulo by zero"):
        classic_div(1, 0)

    class Py2Number:                     # a Python 2 class: __div__, not __truediv__
        def __div__(self, other):
            return "div"

        def __rdiv__(self, other):
            return "rdiv"

        def __idiv__(self, other):
            return "idiv"

    assert classic_div(Py2Number(), 1) == "div" and classic_div(1, Py2Number()) == "rdiv"
    assert classic_idiv(Py2Number(), 1) == "idiv"
    assert classic_idiv(7, 2) == 3 and classic_idiv(7.0, 2) == 3.5


def test_classic_division_numpy():
    np = pytest.importorskip("numpy")
    assert classic_div(np.int64(7), 2) == 3
    assert classic_div(7, np.float64(2)) == 3.5
    assert classic_div(np.array([7, -7]), 2).tolist() == [3, -4]
    assert classic_div(np.array([7.0]), 2).tolist() == [3.5]
    assert classic_div(np.arange(4, dtype=np.uint8), np.int32(2)).tolist() == [0, 0, 1, 1]
    a = np.array([7, 9])
    assert classic_idiv(a, 2) is a and a.tolist() == [3, 4]          # in place, as Python 2
    f = np.array([7.0])
    assert classic_idiv(f, 2) is f and f.tolist() == [3.5]


def test_helpers_install_and_prelude():
    ns = {}
    install_helpers(ns)
    assert ns[DIV_HELPER] is classic_div and ns[IDIV_HELPER] is classic_idiv
    saved = {name: builtins.__dict__.pop(name, None) for name in (DIV_HELPER, IDIV_HELPER)}
    try:
        user_ns = {}
        exec(compile(CLASSIC_DIVISION_PRELUDE, "<prelude>", "exec"), user_ns)  # noqa: S102
        assert set(user_ns) == {"__builtins__"}          # nothing left in the namespace
        code = translate("a = 7/2\nb = 7\nb /= 2\n")
        exec(code, user_ns)  # noqa: S102 - resolved through builtins
        assert user_ns["a"] == 3 and user_ns["b"] == 3
        assert "kernelpar_compat" not in CLASSIC_DIVISION_PRELUDE
    finally:
        for name, value in saved.items():
            if value is None:
                builtins.__dict__.pop(name, None)
            else:
                builtins.__dict__[name] = value
