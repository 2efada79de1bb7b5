"""The task-record schema and the ``db_query`` language: validation and matching (pure).

A query is a dict keyed by top-level record keys.  Each value is either a plain value
(equality: ``{"engine_uuid": uuid}``, ``{"completed": None}`` for "not completed") or
a dict of operators, all of which must hold::

    $eq $ne            equal / not equal (null-safe: {"$ne": "x"} matches a missing value)
    $lt $lte $gt $gte  ordering, between numbers or between strings (dates are strings
                       in one UTC format, so string order is chronological); a value of
                       another type, or None on either side, never matches
    $in $nin           the value is / is not one of a list of values
    $all               the value is a list holding every operand
    $mod               [divisor, remainder]: the value is a number with value % d == r
    $exists            True: the value is not None; False: it is None or missing
    $glob              fnmatch pattern (case-sensitive) on a string value

:func:`compile_query` checks a query once and returns normalised conditions;
:func:`matches` applies them to a stored record, and the SQLite store translates the
same conditions into SQL, so every store answers a query the same way.  A malformed
query raises :class:`QueryError` (a ``ValueError``) naming the key and operator at fault.

Dates (``submitted``, ``started``, ``completed``, ``received``) are kept as ISO-8601
strings in a single UTC format, ``2026-11-22T23:30:00.123456+00:00`` (what
:func:`kernelpar.wire.session.isoformat` writes, always with microseconds), and query
operands given as ``datetime`` objects or ISO strings in any offset are converted to it.
"""

import fnmatch
from datetime import datetime, timezone
from numbers import Real

from ..wire.session import parse_iso

#: dict-valued keys: kept as JSON, queried only with $exists (or == / != None)
JSON_KEYS = frozenset({
    "header", "metadata", "content", "result_header", "result_metadata", "result_content",
    "execute_result", "error",
})
#: lists of binary buffers: queried only with $exists (or == / != None)
BUFFER_KEYS = frozenset({"buffers", "result_buffers"})
#: timestamps, stored as canonical UTC ISO strings
DATE_KEYS = frozenset({"submitted", "started", "completed", "received"})

#: every key of a task record, in storage order
RECORD_KEYS = (
    "msg_id", "header", "metadata", "content", "buffers", "submitted", "client_uuid",
    "engine_uuid", "started", "completed", "resubmitted", "received", "result_header",
    "result_metadata", "result_content", "result_buffers", "queue", "execute_input",
    "execute_result", "error", "stdout", "stderr", "label",
)


def key_kind(key):
    """``"json"``, ``"buffers"``, ``"date"`` or ``"value"`` (plain str/number/list values)."""
    if key in JSON_KEYS:
        return "json"
    if key in BUFFER_KEYS:
        return "buffers"
    if key in DATE_KEYS:
        return "date"
    return "value"


KIND = {key: key_kind(key) for key in RECORD_KEYS}


class QueryError(ValueError):
    """A malformed db query or key list; the message names the key and operator at fault."""


# -- dates ----------------------------------------------------------------------------

_CANONICAL_LEN = len("2026-11-22T23:30:00.123456+00:00")


def normalize_date(value):
    """A ``datetime`` or ISO-8601 string as the canonical UTC string.

    Raises ValueError for a string that is not ISO-8601, TypeError for other types.

    Naive datetimes (and ISO strings without an offset) are taken to be UTC.
    """
    if isinstance(value, datetime):
        dt = value
    elif isinstance(value, str):
        dt = parse_iso(value)
    else:
        raise TypeError(f"not a date: {value!r} ({type(value).__name__})")
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.astimezone(timezone.utc).isoformat(timespec="microseconds")


def store_date(value):
    """The form a date is stored in: canonical when it can be parsed, else left as it is.

    Stores call this on every write, so the common case (already canonical, as the wire
    writes it) is a few character checks; a peer's unparseable date is kept, not raised.
    """
    if type(value) is str and len(value) == _CANONICAL_LEN and value.endswith("+00:00") and value[19] == ".":
        return value
    if value is None:
        return None
    try:
        return normalize_date(value)
    except (ValueError, TypeError):
        return value


def normalize_dates(record):
    """Bring the date keys present in ``record`` (a dict, changed in place) to stored form."""
    for key in DATE_KEYS:
        if key in record:
            record[key] = store_date(record[key])
    return record


# -- predicates (shared by DictDB and the SQLite store's functions) -------------------------

def _is_number(value):
    return isinstance(value, Real)


def _ordered(test):
    def predicate(value, operand):
        if operand is None or value is None:
            return False
        if isinstance(operand, str):
            return isinstance(value, str) and test(value, operand)
        return _is_number(value) and test(value, operand)
    return predicate


def _in(value, operand):
    values, has_none = operand
    if value is None:
        return has_none
    try:
        return value in values
    except TypeError:  # unhashable (a list): never equal to a scalar operand
        return False


def pred_all(value, operand):
    return isinstance(value, (list, tuple)) and all(x in value for x in operand)


def pred_mod(value, operand):
    return _is_number(value) and value % operand[0] == operand[1]


def pred_glob(value, operand):
    return isinstance(value, str) and fnmatch.fnmatchcase(value, operand)


PREDICATES = {
    "$eq": lambda value, operand: value == operand,
    "$ne": lambda value, operand: value != operand,
    "$lt": _ordered(lambda a, b: a < b),
    "$lte": _ordered(lambda a, b: a <= b),
    "$gt": _ordered(lambda a, b: a > b),
    "$gte": _ordered(lambda a, b: a >= b),
    "$in": _in,
    "$nin": lambda value, operand: not _in(value, operand),
    "$all": pred_all,
    "$mod": pred_mod,
    "$exists": lambda value, operand: (value is not None) is operand,
    "$glob": pred_glob,
}
OPERATORS = tuple(PREDICATES)

_NULL_ONLY = {"$eq", "$ne", "$exists"}  # for json / buffer keys, and only against None
_NOT_FOR_DATES = {"$all", "$mod"}
_SCALARS = (str, Real, datetime, type(None))


# -- validation ------------------------------------------------------------------------

class Condition(tuple):
    """One checked test: ``(key, op, operand)`` with the operand normalised.

    ``$in``/``$nin`` operands become ``(frozenset_or_tuple_of_values, has_none)``;
    ``$mod`` becomes ``(divisor, remainder)``; date operands canonical strings.
    """

    __slots__ = ()

    def __new__(cls, key, op, operand):
        return tuple.__new__(cls, (key, op, operand))

    key = property(lambda self: self[0])
    op = property(lambda self: self[1])
    operand = property(lambda self: self[2])


def _where(key, op):
    return f"db query key {key!r}, operator {op}"


def _scalar(key, op, value):
    if not isinstance(value, _SCALARS):
        raise QueryError(f"{_where(key, op)}: operand must be a string, number, date or None, "
                         f"not {type(value).__name__}")
    if value is None:
        return None
    if KIND[key] == "date" or isinstance(value, datetime):
        try:
            return normalize_date(value)
        except (ValueError, TypeError) as e:
            raise QueryError(f"{_where(key, op)}: {e}") from None
    return value


def _operand(key, op, value):
    kind = KIND[key]
    if kind in ("json", "buffers") and (op not in _NULL_ONLY or (op != "$exists" and value is not None)):
        raise QueryError(f"{_where(key, op)}: {key!r} holds {'a dict' if kind == 'json' else 'buffers'}; "
                             "it can only be tested with $exists (or compared with None)")
    if kind == "date" and op in _NOT_FOR_DATES:
        raise QueryError(f"{_where(key, op)}: {op} does not apply to a date")
    if op in ("$eq", "$ne", "$lt", "$lte", "$gt", "$gte"):
        return _scalar(key, op, value)
    if op in ("$in", "$nin", "$all"):
        if not isinstance(value, (list, tuple, set, frozenset)):
            raise QueryError(f"{_where(key, op)}: operand must be a list of values, not {type(value).__name__}")
        items = [_scalar(key, op, v) for v in value]
        if op == "$all":
            return tuple(items)
        return (frozenset(v for v in items if v is not None), any(v is None for v in items))
    if op == "$mod":
        if (not isinstance(value, (list, tuple)) or len(value) != 2
                or not all(_is_number(v) and not isinstance(v, bool) for v in value)):
            raise QueryError(f"{_where(key, op)}: operand must be [divisor, remainder] (two numbers), not {value!r}")
        if value[0] == 0:
            raise QueryError(f"{_where(key, op)}: divisor must not be 0")
        return (value[0], value[1])
    if op == "$exists":
        if not isinstance(value, bool):
            raise QueryError(f"{_where(key, op)}: operand must be True or False, not {value!r}")
        return value
    if op == "$glob":
        if not isinstance(value, str):
            raise QueryError(f"{_where(key, op)}: operand must be a pattern string, not {type(value).__name__}")
        return value
    raise AssertionError(op)  # pragma: no cover


def compile_query(query):
    """Check ``query`` and return its list of :class:`Condition`; QueryError if malformed."""
    if not isinstance(query, dict):
        raise QueryError(f"a db query must be a dict of record keys, not {type(query).__name__}")
    conditions = []
    for key, spec in query.items():
        if key not in KIND:
            raise QueryError(f"db query key {key!r} is not a task-record key (keys: {', '.join(RECORD_KEYS)})")
        if isinstance(spec, dict):
            if not spec:
                raise QueryError(f"db query key {key!r}: empty operator dict")
            for op, value in spec.items():
                if op not in PREDICATES:
                    hint = "" if str(op).startswith("$") else "; sub-fields cannot be queried, only top-level keys"
                    raise QueryError(f"db query key {key!r}: unknown operator {op!r} "
                                     f"(operators: {' '.join(OPERATORS)}){hint}")
                conditions.append(Condition(key, op, _operand(key, op, value)))
        else:
            conditions.append(Condition(key, "$eq", _operand(key, "$eq", spec)))
    return conditions


def check_keys(keys):
    """A projection list checked against the schema: None (all keys) or a tuple of keys."""
    if keys is None:
        return None
    if isinstance(keys, str) or not isinstance(keys, (list, tuple, set, frozenset)):
        raise QueryError(f"db query keys must be a list of record keys, not {type(keys).__name__}")
    for key in keys:
        if key not in KIND:
            raise QueryError(f"db query: {key!r} is not a task-record key (keys: {', '.join(RECORD_KEYS)})")
    return ("msg_id",) + tuple(k for k in dict.fromkeys(keys) if k != "msg_id")


def matches(conditions, record):
    """Whether a stored record (a dict; missing keys count as None) meets every condition."""
    get = record.get
    for key, op, operand in conditions:
        if not PREDICATES[op](get(key), operand):
            return False
    return True
