"""The kernelpar protocol: which sockets exist and which messages cross them.

Theory of operation
-------------------
One controller process binds every channel (on ``--ip``, 127.0.0.1 by default, random
ports unless configured) and writes the ports into the connection files
(:mod:`kernelpar.wire.connection`).  Every message uses the framing of
:mod:`kernelpar.wire.session`, signed with the cluster key.  Every engine uses its
``uuid`` (ASCII bytes) as the zmq ``IDENTITY`` of all its sockets.

Channels (controller socket type; peers)::

    registration   ROUTER   hub            <- client DEALER, engine DEALER
    notification   PUB      hub            -> client SUB (subscribes b"")
    mux            ROUTER|ROUTER monitored queue (C thread):  client DEALER -> engine DEALER
    control        ROUTER|ROUTER monitored queue (C thread):  client DEALER -> engine DEALER
    task           ROUTER (clients) and ROUTER (engines), the scheduler's, on the reactor
                   (scheme 'pure': ROUTER|DEALER monitored queue in C, topics intask/outtask)
    broadcast      ROUTER   (clients); copies go out through the engine-side task ROUTER
    iopub          XSUB(engine side)|XPUB(client side) proxy (C thread), capture -> hub
                   engine XPUB (connects) -> client SUB (subscribes to its session id)
    hb_ping        PUB      hub            -> engine heart SUB (C forwarder) and engine IO SUB
    hb_pong        ROUTER   hub            <- engine heart DEALER (identity = uuid)

``mux``, ``control`` and ``task`` have a client-side and an engine-side port (``mux`` in
the client file is the client-facing one, ``mux`` in the engine file the engine-facing
one).  The client file also names ``task_scheme`` and ``broadcast`` (None with 'pure').

Direct (mux/control) routing: a client DEALER sends ``[engine_uuid, <IDS|MSG>, ...]``.
The queue's client-facing ROUTER prepends the client's identity, swaps the two
identities and the engine-facing ROUTER delivers ``[client_id, <IDS|MSG>, ...]`` to the
engine's DEALER.  The engine replies with ``[client_id, <IDS|MSG>, ...]`` and the client
receives ``[engine_uuid, <IDS|MSG>, ...]``.  The queue copies every message to the hub
(monitor topics ``in``/``out`` for mux, ``incontrol``/``outcontrol`` for control) so the
hub keeps task records and queue status without sitting in the data path.

Registration (engine, on ``registration``):

* ``registration_request`` ``{uuid, id (optional: the id it asks for), versions,
  hostname, pid}`` -> ``registration_reply`` ``{status: "ok", id, hb_period (s),
  versions}`` or ``{status: "error", reason}`` (version mismatch, id taken).
* The engine then connects mux, control, iopub and its heart, waits until its iopub XPUB
  has received the first subscription (so output is not lost), and sends ``engine_ready``
  ``{id}`` once on mux, task and control, addressed to the routing id ``b"hub"``
  (the queue drops it, the hub sees it on the monitor).  When the hub has seen both
  readies and one heartbeat, the engine is registered: ``registration_notification``
  ``{id, uuid}`` goes out on ``notification``.
* Clean exit: ``unregistration_request`` ``{id}``; missed heartbeats: the hub unregisters
  the engine itself.  Either way ``unregistration_notification`` ``{id, uuid}`` goes out.
  Engine ids are 0..n-1 in order of registration and never reused.

Client requests to the hub (on ``registration``), each answered with ``<type>_reply``:

* ``connection_request`` ``{versions}`` -> ``{status, engines: {"0": uuid, ...},
  versions}``.  The hub answers once it has seen the client's iopub subscription pass
  through the proxy (or after 2 s), so no output is lost to a late subscription.
* ``queue_request`` ``{targets: [ids] | null, verbose}`` ->
  ``{status, queue: {"0": {"queue": n, "completed": n, "tasks": 0}, ...}, unassigned: 0}``
  (lists of msg_ids instead of counts when verbose).
* ``shutdown_request`` ``{}`` -> ``shutdown_reply``; then ``shutdown_notification``, the
  hub asks every engine to shut down and the controller exits.

Execution (client -> engine on mux):

* ``apply_request``: content ``{}``; buffers ``pack_apply(f, args, kwargs)``.
  ``apply_reply``: content ``{status: "ok"}`` with buffers ``serialize_object(result)``,
  or ``{status: "error", ename, evalue, traceback, engine_info}``, or
  ``{status: "aborted"}``.
* ``execute_request``: content ``{code, silent, store_history, user_expressions: {},
  allow_stdin: false}``.  ``execute_reply``: ``{status, execution_count}`` plus the error
  fields on error.
* Reply metadata: ``{started, completed (ISO dates), engine_id, engine_uuid, status,
  iopub}`` where ``iopub`` is the number of iopub messages the engine published for this
  request *before* the reply.  A client knows a request's output is complete once it has
  received that many; a silent task publishes nothing at all.
* ``engine_info`` in errors: ``{engine_id, engine_uuid, method: "apply"|"execute"}``.
* After a failed ``execute_request``, requests already queued on that engine are
  answered ``aborted`` (stop on error).
* An ``execute_request`` of IPython 0.10's ``MultiEngineClient`` has ``legacy_execute
  {raw, prelude}`` in its metadata: the engine runs the code with 0.10's interpreter
  (:func:`kernelpar.client.legacy.onengine.execute`, not IPython) and the reply's content
  is ``{status: "ok", legacy_result}`` (0.10's result dict), or an error as an
  ``apply_reply``'s.  It costs what a modern ``execute`` does, where an apply of the same
  function cost a pickled call more each way.

Load-balanced tasks (client -> scheduler on task, see :mod:`kernelpar.controller.taskqueue`):
``apply_request`` without an engine routing id; scheduling flags in the metadata
(``after``/``follow`` as ``Dependency.as_dict()``, ``timeout`` s, ``retries``, ``targets``
[engine uuids]).  Replies reach the client as ``[engine_uuid, <IDS|MSG>, ...]``; failures
the scheduler decides (``ImpossibleDependency``, ``InvalidDependency``, ``TaskTimeout``,
``EngineError``, ``status: aborted``) are replies signed by the controller.  The hub's
``task_abort_request {msg_ids}`` aborts tasks still waiting there and forwards an
``abort_request`` to the engines holding the others.

Broadcasts (client -> controller on broadcast, see :mod:`kernelpar.controller.broadcast`):
one request with ``{targets: [uuids], msg_ids: [one per target], is_coalescing}`` in its
metadata; each engine gets a re-signed copy with its msg_id.  Replies come one per engine,
or as one ``coalesced_reply {replies: [{header, parent_header, metadata, content,
nbuffers}, ...]}`` followed by every reply's buffers.

Large buffers: a message whose metadata has ``shm: [[index, name, nbytes], ...]`` carries
empty placeholder frames at those indices; the data is in ``/dev/shm/<name>``
(:mod:`kernelpar.wire.shm`), used only between processes that found each other's marker.

Task records (client -> hub on registration): ``db_request {query, keys}``,
``history_request``, ``result_request {msg_ids, status_only}``, ``resubmit_request
{msg_ids}``, ``purge_request {msg_ids | "all", engine_ids}`` (see
:mod:`kernelpar.controller.queries`).

Control (client -> engine on control, handled at once by the engine's IO thread):
``abort_request {msg_ids: [...] | null}`` (null: everything queued; queued requests
are answered ``aborted`` at once, on the control channel),
``clear_request {}``, ``shutdown_request {}``, ``signal_request {sig: int | "SIGINT"}``;
each answered with ``<type>_reply {status}``.

iopub (engine -> client): frames ``[topic, <IDS|MSG>, ...]`` where ``topic`` is the
``session`` of the request's parent header (the requesting client's id), so a client
subscribes to its own session only.  Types: ``stream {name, text}``,
``display_data {data, metadata, transient}``, ``execute_result {execution_count, data,
metadata}``, ``error {ename, evalue, traceback}``, ``execute_input {code,
execution_count}``.  Metadata: ``{engine_id}``.

Heartbeat: the hub publishes ``[b"<beat number>"]`` on hb_ping every period; the engine's
C heart echoes it back on hb_pong.  An engine missing more than ``max_missed`` beats is
unregistered.  An engine that hears no ping for ``max(5 s, 10 periods)`` exits.
"""

HUB_ROUTING_ID = b"hub"
HUB_IOPUB_TOPIC = b"\x00kernelpar-hub"

MONITOR_TOPICS = {
    "mux": (b"in", b"out"),
    "control": (b"incontrol", b"outcontrol"),
    "task": (b"intask", b"outtask"),
}

#: metadata key of a legacy MultiEngineClient's ``execute_request``, and its reply's content key
LEGACY_EXECUTE = "legacy_execute"
LEGACY_RESULT = "legacy_result"

ENGINE_EXIT_MIN_SECONDS = 5.0
ENGINE_EXIT_PERIODS = 10
DEFAULT_HB_PERIOD_MS = 1000
DEFAULT_HB_MAX_MISSED = 5
#: an engine's exit status when it stopped before it registered: it could not start
#: (usage errors exit with argparse's 2)
EXIT_NOT_REGISTERED = 3


def execute_content(code, silent=True):
    """The content of an ``execute_request`` for ``code``."""
    return {"code": code, "silent": bool(silent), "store_history": not silent, "user_expressions": {},
            "allow_stdin": False}


def reply_type(msg_type):
    """``apply_request`` -> ``apply_reply`` (anything else gets ``_reply`` appended)."""
    return msg_type[: -len("_request")] + "_reply" if msg_type.endswith("_request") else msg_type + "_reply"


def engine_silence_limit(hb_period):
    """Seconds without a ping after which an engine decides the controller is gone."""
    return max(ENGINE_EXIT_MIN_SECONDS, ENGINE_EXIT_PERIODS * hb_period)
