"""Task dependencies without a cluster: ``Dependency`` sets, and ``@require``/``@depend``
objects pickled the way an apply request carries them and called as an engine would."""

import base64
import builtins
import copy
import inspect
import pickle
import subprocess
import sys

import pytest

import kernelpar as ipp
from kernelpar.client.dependency import Dependency, _require, as_dependency_dict, depend, dependent, require
from kernelpar.errors import UnmetDependency, wrap_exception
from kernelpar.wire import serialize
from kernelpar.wire.serialize import deserialize_object, interactive, pack_apply, serialize_object, unpack_apply

MISSING = "kernelpar_test_no_such_module_xyz"


class FakeAsyncResult:
    """Anything with ``msg_ids`` counts as an AsyncResult."""

    def __init__(self, *msg_ids):
        self.msg_ids = list(msg_ids)


@pytest.fixture
def user_ns():
    """A fresh engine-style user namespace for interactive functions (restored after)."""
    ns = {"__builtins__": builtins}
    serialize.set_user_namespace(ns)
    try:
        yield ns
    finally:
        serialize.set_user_namespace(None)


def ship(obj):
    """What an engine gets: ``obj`` serialized and deserialized (into the current user ns)."""
    return deserialize_object([bytes(b) for b in serialize_object(obj)])


def apply_on_engine(f, *args, **kwargs):
    """pack_apply -> unpack_apply -> call, like the engine's do_apply."""
    buffers = [bytes(b) for b in pack_apply(f, args, kwargs)]
    g, a, k = unpack_apply(buffers, serialize.user_namespace())
    return g(*a, **k)


# --------------------------------------------------------------------------- exports


def test_public_names_are_exported():
    for name in ("require", "depend", "dependent", "Dependency"):
        assert getattr(ipp, name) is globals()[name]
        assert getattr(ipp.client, name) is globals()[name]
        assert name in ipp.client.__all__


# --------------------------------------------------------------------------- Dependency construction


def test_default_is_empty_with_default_flags():
    dep = Dependency()
    assert dep == set() and isinstance(dep, set)
    assert (dep.all, dep.success, dep.failure) == (True, True, False)


@pytest.mark.parametrize(
    "value, expected",
    [
        ("a", {"a"}),
        (FakeAsyncResult("a", "b"), {"a", "b"}),
        (["a", "b"], {"a", "b"}),
        (("a", "b"), {"a", "b"}),
        ({"a", "b"}, {"a", "b"}),
        (frozenset({"a"}), {"a"}),
        ([FakeAsyncResult("a"), "b", FakeAsyncResult("c", "d")], {"a", "b", "c", "d"}),
        (Dependency(["a", "b"]), {"a", "b"}),
        ([Dependency(["a"]), "b"], {"a", "b"}),
        ([], set()),
        ({"dependencies": ["a", "b"]}, {"a", "b"}),
    ],
)
def test_accepted_forms(value, expected):
    assert Dependency(value) == expected


def test_flags_are_stored():
    dep = Dependency("a", all=False, success=False, failure=True)
    assert (dep.all, dep.success, dep.failure) == (False, False, True)


def test_dict_form_sets_flags_and_round_trips():
    dep = Dependency(["x", "y"], all=False, success=True, failure=True)
    d = dep.as_dict()
    assert d == {"dependencies": ["x", "y"], "all": False, "success": True, "failure": True}
    again = Dependency(d)
    assert again == dep and again.as_dict() == d
    # missing flags fall back to the arguments
    assert Dependency({"dependencies": ["x"]}, all=False).all is False


def test_as_dict_is_json_able():
    import json

    d = Dependency([FakeAsyncResult("m1", "m2"), "m0"]).as_dict()
    assert json.loads(json.dumps(d)) == d
    assert isinstance(d["dependencies"], list) and sorted(d["dependencies"]) == ["m0", "m1", "m2"]


def test_dependency_input_copies_ids_not_flags():
    src = Dependency(["a"], all=False, failure=True)
    dep = Dependency(src)
    assert dep == {"a"} and (dep.all, dep.success, dep.failure) == (True, True, False)


def test_neither_success_nor_failure_is_an_error():
    with pytest.raises(ValueError):
        Dependency(["a"], success=False, failure=False)
    with pytest.raises(ValueError):
        Dependency({"dependencies": ["a"], "all": True, "success": False, "failure": False})


@pytest.mark.parametrize(
    "value, type_name",
    [
        (5, "int"),
        (None, "NoneType"),
        (3.5, "float"),
        (b"abc", "bytes"),
        ([1], "int"),
        (["a", None], "NoneType"),
        ([["a"]], "list"),
        (object(), "object"),
    ],
)
def test_bad_types_raise_type_error_naming_the_type(value, type_name):
    with pytest.raises(TypeError, match=type_name):
        Dependency(value)


def test_bad_dicts_and_bad_msg_ids_attributes():
    with pytest.raises(TypeError, match="unexpected keys"):
        Dependency({"msg_ids": ["a"]})
    with pytest.raises(TypeError, match="int"):
        Dependency({"dependencies": [1]})
    with pytest.raises(TypeError, match="int"):
        Dependency(FakeAsyncResult("a", 2))
    bad = FakeAsyncResult()
    bad.msg_ids = "abc"
    with pytest.raises(TypeError, match="str"):
        Dependency(bad)


def test_dependency_pickles_and_copies_with_flags():
    dep = Dependency(["a", "b"], all=False, success=False, failure=True)
    for other in (pickle.loads(pickle.dumps(dep)), ship(dep), copy.copy(dep), copy.deepcopy(dep)):
        assert type(other) is Dependency and other == dep
        assert other.as_dict() == dep.as_dict()


# --------------------------------------------------------------------------- check / unreachable

SUCCEEDED = {str(i) for i in range(0, 20, 2)}
FAILED = {str(i) for i in range(1, 20, 2)}
MIXED = ["0", "1", "2", "3"]
ONLY_SUCCEEDED = ["0", "2", "4"]
ONLY_FAILED = ["1", "3"]
PENDING = ["100", "101"]
SOME_PENDING_SUCCEEDED = ["0", "100"]
SOME_PENDING_FAILED = ["1", "100"]

# (ids, all, success, failure) -> (met, unreachable)
CASES = [
    # success only: a failure makes all=True impossible
    (MIXED, True, True, False, False, True),
    (MIXED, False, True, False, True, False),
    (ONLY_SUCCEEDED, True, True, False, True, False),
    (ONLY_SUCCEEDED, False, True, False, True, False),
    (ONLY_FAILED, True, True, False, False, True),
    (ONLY_FAILED, False, True, False, False, True),
    (PENDING, True, True, False, False, False),
    (PENDING, False, True, False, False, False),
    (SOME_PENDING_SUCCEEDED, True, True, False, False, False),
    (SOME_PENDING_SUCCEEDED, False, True, False, True, False),
    (SOME_PENDING_FAILED, True, True, False, False, True),
    (SOME_PENDING_FAILED, False, True, False, False, False),
    # failure only: a success makes all=True impossible
    (MIXED, True, False, True, False, True),
    (MIXED, False, False, True, True, False),
    (ONLY_SUCCEEDED, True, False, True, False, True),
    (ONLY_SUCCEEDED, False, False, True, False, True),
    (ONLY_FAILED, True, False, True, True, False),
    (ONLY_FAILED, False, False, True, True, False),
    (PENDING, True, False, True, False, False),
    (PENDING, False, False, True, False, False),
    (SOME_PENDING_SUCCEEDED, True, False, True, False, True),
    (SOME_PENDING_SUCCEEDED, False, False, True, False, False),
    # success or failure: anything finished counts, nothing is ever impossible
    (MIXED, True, True, True, True, False),
    (MIXED, False, True, True, True, False),
    (ONLY_FAILED, True, True, True, True, False),
    (PENDING, True, True, True, False, False),
    (PENDING, False, True, True, False, False),
    (SOME_PENDING_FAILED, True, True, True, False, False),
    (SOME_PENDING_FAILED, False, True, True, True, False),
]


@pytest.mark.parametrize("ids, all_, success, failure, met, unreachable", CASES)
def test_check_and_unreachable(ids, all_, success, failure, met, unreachable):
    dep = Dependency(ids, all=all_, success=success, failure=failure)
    assert dep.check(SUCCEEDED, FAILED) is met
    assert dep.unreachable(SUCCEEDED, FAILED) is unreachable
    # any iterable of msg_ids works, and the dict form behaves the same
    assert dep.check(sorted(SUCCEEDED), list(FAILED)) is met
    again = Dependency(dep.as_dict())
    assert again.check(SUCCEEDED, FAILED) is met and again.unreachable(SUCCEEDED, FAILED) is unreachable


def test_flags_can_be_changed_after_construction():
    dep = Dependency(MIXED, success=True, failure=False)
    assert not dep.check(SUCCEEDED, FAILED) and dep.unreachable(SUCCEEDED, FAILED)
    dep.all = False
    assert dep.check(SUCCEEDED, FAILED) and not dep.unreachable(SUCCEEDED, FAILED)


def test_empty_dependency_is_always_met_never_unreachable():
    for flags in [(True, True, False), (False, False, True), (True, True, True)]:
        dep = Dependency([], *flags)
        assert dep.check(set(), set()) is True
        assert dep.unreachable(SUCCEEDED, FAILED) is False


def test_failed_none_means_no_failures_known():
    dep = Dependency(["1"], success=False, failure=True)
    assert dep.check(SUCCEEDED) is False and dep.unreachable(SUCCEEDED) is False
    dep = Dependency(["1"], success=True, failure=False)
    assert dep.check(SUCCEEDED) is False and dep.unreachable(SUCCEEDED) is False
    assert Dependency(["0"]).check(SUCCEEDED) is True


# --------------------------------------------------------------------------- as_dependency_dict


@pytest.mark.parametrize("empty", [None, [], (), set(), Dependency(), {"dependencies": []}, FakeAsyncResult()])
def test_as_dependency_dict_empty_is_none(empty):
    assert as_dependency_dict(empty) is None


def test_as_dependency_dict_forms():
    default = {"all": True, "success": True, "failure": False}
    assert as_dependency_dict("a") == {"dependencies": ["a"], **default}
    assert as_dependency_dict(FakeAsyncResult("b", "a")) == {"dependencies": ["a", "b"], **default}
    assert as_dependency_dict(["a", FakeAsyncResult("b")]) == {"dependencies": ["a", "b"], **default}
    dep = Dependency(["a"], all=False, success=False, failure=True)
    assert as_dependency_dict(dep) == dep.as_dict()  # flags kept
    assert as_dependency_dict(dep.as_dict()) == dep.as_dict()


@pytest.mark.parametrize("bad", [5, 1.5, [None], object(), {"msg_ids": ["a"]}])
def test_as_dependency_dict_rejects_other_types(bad):
    with pytest.raises(TypeError, match="after/follow"):
        as_dependency_dict(bad)


# --------------------------------------------------------------------------- dependent / depend


def always(value):
    return value


def refuse():
    raise UnmetDependency("not on this engine")


def broken():
    raise RuntimeError("check crashed")


def square(x):
    """Square a number."""
    return x * x


def test_dependent_keeps_name_doc_and_signature():
    d = dependent(square, always, True)
    assert d.__name__ == "square" and d.__doc__ == "Square a number."
    assert d.__qualname__ == "square"
    assert str(inspect.signature(d)) == "(x)"
    assert callable(d) and "square" in repr(d)
    assert depend(always, True)(square).__name__ == "square"
    assert require("os")(square).__doc__ == "Square a number."


def test_dependent_rejects_non_callables():
    with pytest.raises(TypeError, match="int"):
        dependent(5, always)
    with pytest.raises(TypeError, match="str"):
        dependent(square, "nope")


@pytest.mark.parametrize("ret", [True, None, 0, [], "yes"])
def test_depend_runs_unless_check_returns_exactly_false(ret):
    f = depend(always, ret)(square)
    assert f(3) == 9
    assert ship(f)(4) == 16
    assert apply_on_engine(f, 5) == 25


def test_depend_false_raises_unmet_dependency():
    f = depend(always, False)(square)
    with pytest.raises(UnmetDependency):
        f.check_dependency()
    for g in (f, ship(f)):
        with pytest.raises(UnmetDependency):
            g(3)
    with pytest.raises(UnmetDependency):
        apply_on_engine(f, 3)


def test_check_raising_unmet_dependency_or_other_errors_propagates():
    with pytest.raises(UnmetDependency, match="not on this engine"):
        ship(depend(refuse)(square))(2)
    with pytest.raises(RuntimeError, match="check crashed"):
        ship(depend(broken)(square))(2)


def test_depend_passes_args_and_kwargs_to_check(user_ns):
    @interactive
    def check(a, b, *, c):
        return a + b == c

    @interactive
    def task(x):
        return x + 1

    assert apply_on_engine(depend(check, 1, 2, c=3)(task), 1) == 2
    with pytest.raises(UnmetDependency):
        apply_on_engine(depend(check, 1, 2, c=4)(task), 1)


def test_depend_check_keywords_may_be_named_like_its_parameters():
    seen = {}

    def check(**kwargs):
        seen.update(kwargs)
        return True

    d = dependent(square, check, self=1, f=2, df=3, _wrapped_f=4)
    assert d(2) == 4 and seen == {"self": 1, "f": 2, "df": 3, "_wrapped_f": 4}
    assert depend(check, self=5)(square)(3) == 9


def test_unmet_dependency_is_reported_with_its_name():
    """What the engine sends back: the scheduler looks for ename 'UnmetDependency'."""
    f = depend(always, False)(square)
    try:
        apply_on_engine(f, 1)
    except BaseException as e:
        content = wrap_exception({"engine_id": 0, "method": "apply"}, e)
    assert content["status"] == "error" and content["ename"] == "UnmetDependency"


def test_stacked_decorators_check_every_condition(user_ns):
    @require("base64")
    @depend(always, True)
    @interactive
    def encode(arg):
        return base64.b64encode(arg)  # noqa: F821 (imported by @require on the engine)

    assert apply_on_engine(encode, b"foo") == b"Zm9v"

    @depend(always, True)
    @require(MISSING)
    @interactive
    def never(arg):
        return arg

    with pytest.raises(UnmetDependency):
        apply_on_engine(never, 1)


# --------------------------------------------------------------------------- require


def test_require_imports_module_by_name(user_ns):
    @require("base64")
    @interactive
    def encode(arg):
        return base64.b64encode(arg)  # noqa: F821

    assert "base64" not in user_ns
    assert ship(encode)(b"foo") == b"Zm9v"
    assert user_ns["base64"] is base64


def test_require_imports_module_objects_and_dotted_names(user_ns):
    import xml.dom

    @require(base64, "xml.dom")
    @interactive
    def both():
        return base64.b64decode(b"Zm9v"), xml.dom.Node  # noqa: F821

    assert apply_on_engine(both) == (b"foo", xml.dom.Node)
    assert user_ns["xml"] is sys.modules["xml"]  # like `import xml.dom`


def test_require_missing_module_is_unmet(user_ns):
    @require("base64", MISSING)
    @interactive
    def f():
        return 1

    with pytest.raises(UnmetDependency, match=MISSING):
        ship(f)()
    with pytest.raises(UnmetDependency):
        apply_on_engine(f)


@interactive
def helper(a):
    """Interactive and module-level: tasks reach it as a global of the user namespace."""
    return a * 10


def test_require_pushes_functions_by_name(user_ns):
    @interactive
    def bar(a):
        return helper(a)  # noqa: F821

    @require(helper)
    @interactive
    def bar2(a):
        return helper(a)  # noqa: F821

    with pytest.raises(NameError):
        apply_on_engine(bar, 5)
    assert apply_on_engine(bar2, 5) == 50
    assert user_ns["helper"](1) == 10
    # the pushed interactive function lives in the user namespace too
    assert user_ns["helper"].__globals__ is user_ns


def test_require_pushes_objects_by_keyword(user_ns):
    @interactive
    def negate(a):
        return -a

    @require(foo=negate, offset=7, mod=base64)
    @interactive
    def bar(a):
        return foo(a) + offset, mod.b64encode(b"foo")  # noqa: F821

    assert apply_on_engine(bar, 5) == (2, b"Zm9v")
    assert user_ns["offset"] == 7


def test_require_rejects_unnamed_positional_objects():
    with pytest.raises(TypeError, match="int"):
        require(5)
    with pytest.raises(TypeError, match="list"):
        require([1, 2])


def test_require_builds_depend_on_require_helper():
    d = require("os", square, k=1)
    assert isinstance(d, depend)
    assert d.f is _require and d.args == ("os",) and d.kwargs == {"square": square, "k": 1}


def test_require_helper_returns_true_and_fills_user_namespace(user_ns):
    assert _require("base64", answer=42) is True
    assert user_ns["base64"] is base64 and user_ns["answer"] == 42


def test_require_on_the_engine_side_of_a_separate_process():
    """Serialize here, unpickle and call in a fresh interpreter with its own user namespace."""

    @require("colorsys")
    @interactive
    def hls(r):
        return colorsys.rgb_to_hls(r, 0.0, 0.0)[0]  # noqa: F821

    @require(MISSING)
    @interactive
    def impossible():
        return 1

    script = r"""
import sys
from kernelpar.wire.serialize import set_user_namespace, unpack_apply
ns = {"__builtins__": __builtins__}
set_user_namespace(ns)
for n in range(2):
    size = int(sys.stdin.buffer.readline())
    data = sys.stdin.buffer.read(size)
    f, args, kwargs = unpack_apply([data], ns)
    try:
        print(repr(f(*args, **kwargs)), "colorsys" in ns)
    except Exception as e:
        print(type(e).__name__)
"""
    payload = b""
    for f, args in ((hls, (1.0,)), (impossible, ())):
        data = b"".join(bytes(b) for b in pack_apply(f, args, {}, threshold=1 << 40))
        payload += b"%d\n" % len(data) + data
    out = subprocess.run(
        [sys.executable, "-c", script], input=payload, capture_output=True, timeout=60, check=True
    ).stdout.decode().split("\n")
    assert out[0] == "0.0 True"
    assert out[1] == "UnmetDependency"
