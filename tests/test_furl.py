"""FURLs without processes: format, files, the handshake, the legacy command lines.

Checklist items CLI-03 (format), CLI-06 (parsing of the other ipcluster modes), CON-01
(argument rules), and the pure halves of CLI-02/CLI-04 (file modes, option rules).  The
live halves are in test_legacy_cli_live.py.
"""

import json
import os
import re
import stat

import pytest

from kernelpar.client.legacy import furl as legacy_furl
from kernelpar.cluster import app, legacycli
from kernelpar.controller import app as controller_app
from kernelpar.controller import furlfiles
from kernelpar.wire import furl

SECURE = re.compile(r"pb://[a-z2-7]{32}@[^/,]+:\d+(,[^/,]+:\d+)*/[a-z2-7]{32}\Z")
INSECURE = re.compile(r"pbu://[^/,]+:\d+(,[^/,]+:\d+)*/[a-z2-7]{32}\Z")


@pytest.fixture
def ipydir(tmp_path, monkeypatch):
    path = tmp_path / "ipython"
    monkeypatch.setenv("IPYTHONDIR", str(path))
    return str(path)


def _furl(secure=True, hints=(("127.0.0.1", 10101),)):
    return furl.make_furl(furl.new_name(), hints, furl.new_name(), secure)


# --- names and format (CLI-03)


def test_names_are_160_random_bits_in_lowercase_base32():
    names = {furl.new_name() for _ in range(50)}
    assert len(names) == 50
    assert all(re.fullmatch(r"[a-z2-7]{32}", n) for n in names)


def test_format_and_parse_round_trip():
    secure = _furl(hints=(("10.0.0.5", 51234), ("127.0.0.1", 51234)))
    assert SECURE.match(str(secure))
    assert str(secure).startswith(f"pb://{secure.tub_id}@10.0.0.5:51234,127.0.0.1:51234/")
    assert furl.parse_furl(str(secure)) == secure
    insecure = _furl(secure=False)
    assert INSECURE.match(str(insecure)) and insecure.tub_id is None and not insecure.secure
    assert furl.parse_furl(f"  {insecure}\n") == insecure
    assert "<swiss number>" in secure.redacted() and secure.name not in secure.redacted()


@pytest.mark.parametrize("text,why", [
    ("http://x/y", "does not start with pb:// or pbu://"),
    ("pb://short@127.0.0.1:1/" + "a" * 32, "malformed FURL"),
    ("pb://" + "a" * 32 + "@127.0.0.1/" + "a" * 32, "malformed FURL"),
    ("pb://" + "a" * 32 + "@127.0.0.1:1/" + "A" * 32, "malformed FURL"),
    ("pbu://127.0.0.1:70000/" + "a" * 32, "out of range"),
    ("pb://" + "a" * 32 + "@127.0.0.1:1/" + "a" * 32 + "/extra", "malformed FURL"),
])
def test_malformed_furls_say_what_is_wrong(text, why):
    with pytest.raises(ValueError, match=re.escape(why)):
        furl.parse_furl(text)


# --- files (CLI-02, CON-01)


def test_security_dir_is_ipythondir_security_0700(ipydir):
    os.makedirs(os.path.join(ipydir, "security"), mode=0o755)
    os.chmod(os.path.join(ipydir, "security"), 0o755)
    path = furl.legacy_security_dir()
    assert path == os.path.join(ipydir, "security")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o700  # re-chmodded
    assert furl.default_furl_file("mec") == os.path.join(ipydir, "security", "ipcontroller-mec.furl")


def test_write_furl_file_is_one_line_0600_in_a_0700_dir(tmp_path):
    f = _furl()
    path = tmp_path / "new" / "ipcontroller-tc.furl"
    furl.write_furl_file(str(path), f)
    assert path.read_text() == f"{f}\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert [p.name for p in path.parent.iterdir()] == ["ipcontroller-tc.furl"]  # no temp file left
    assert furl.read_furl_file(str(path)) == f


def test_remove_furl_file_only_if_it_still_holds_that_furl(tmp_path):
    path = str(tmp_path / "x.furl")
    mine, theirs = _furl(), _furl()
    furl.write_furl_file(path, theirs)
    assert not furl.remove_furl_file(path, only_if=mine) and os.path.exists(path)
    assert furl.remove_furl_file(path, only_if=theirs) and not os.path.exists(path)
    assert not furl.remove_furl_file(path)


def test_furl_argument_accepts_a_furl_string_or_a_file(tmp_path):
    f = _furl()
    got, source = furl.read_furl_argument(str(f))
    assert got == f and f.name not in source
    path = tmp_path / "mec.furl"
    path.write_text(f"\n  {f}  \n")
    assert furl.read_furl_argument(str(path)) == (f, f"the FURL file {path}")
    assert furl.read_furl_argument(path)[0] == f  # a PathLike too


@pytest.mark.parametrize("content,why", [
    (None, "no such file"),
    ("", "the file is empty"),
    ("   \n", "the file is empty"),
    ("tcp://127.0.0.1:1", "the file holds no valid FURL: it does not start with pb:// or pbu://"),
    ("pb://nonsense", "the file holds no valid FURL: malformed FURL"),
])
def test_bad_furl_files_raise_the_0_10_valueerror_naming_the_file(tmp_path, content, why):
    path = tmp_path / "ipcontroller-mec.furl"
    if content is not None:
        path.write_text(content)
    with pytest.raises(ValueError) as info:
        furl.read_furl_argument(str(path))
    assert str(info.value).startswith(f"not a furl or a file containing a furl: {path} (")
    assert why in str(info.value)


@pytest.mark.parametrize("arg", ["garbage", "pb://broken", 42, None])
def test_bad_arguments_raise_the_0_10_valueerror(arg):
    with pytest.raises(ValueError, match="^not a furl or a file containing a furl: "):
        furl.read_furl_argument(arg)


def test_legacy_client_argument_rules(ipydir):
    # CON-01: empty means the default file (which must then exist), explicit path, FURL string
    with pytest.raises(ValueError) as info:
        legacy_furl.furl_for("", "mec")
    assert os.path.join(ipydir, "security", "ipcontroller-mec.furl") in str(info.value)
    assert "no such file" in str(info.value)
    f = _furl()
    furl.write_furl_file(furl.default_furl_file("tc"), f)
    assert legacy_furl.furl_for(None, "tc")[0] == f
    assert legacy_furl.furl_for(str(f), "mec")[0] == f
    with pytest.raises(ValueError, match="kind must be one of mec, tc, engine"):
        legacy_furl.connection_info("", "multiengine")
    with pytest.raises(ValueError, match="is for engines"):
        legacy_furl.client_for("", "engine")
    with pytest.raises(ValueError, match="^not a furl or a file containing a furl: nonsense"):
        legacy_furl.client_for("nonsense", "mec")


# --- the handshake


def _names(tub_secure=True):
    tub_id = furl.new_name()
    mec, tc = furl.new_name(), furl.new_name()
    return tub_id, tub_secure, {mec: "mec", tc: "tc"}


def _redeem(f, tub, payload):
    frames, nonce = furl.request(f)
    name, kind, client_nonce = furl.check_request(frames, *tub)
    return furl.open_reply(furl.reply(tub[0] if tub[1] else None, name, kind, client_nonce, payload), f, nonce)


def test_handshake_round_trip_returns_the_payload_and_kind():
    tub = _names()
    payload = {"key": "k" * 64, "mux": 1234}
    for name, kind in tub[2].items():
        f = furl.make_furl(tub[0], [("127.0.0.1", 1)], name)
        assert _redeem(f, tub, payload) == (kind, payload)
    insecure = (tub[0], False, tub[2])
    f = furl.make_furl(None, [("127.0.0.1", 1)], next(iter(tub[2])), secure=False)
    assert _redeem(f, insecure, payload) == ("mec", payload)


def test_neither_the_swiss_number_nor_the_payload_travel_in_clear():
    tub = _names()
    name = next(iter(tub[2]))
    f = furl.make_furl(tub[0], [("127.0.0.1", 1)], name)
    frames, nonce = furl.request(f)
    assert name.encode() not in b"".join(frames)
    _, kind, client_nonce = furl.check_request(frames, *tub)
    secret = "0123456789abcdef" * 4
    answer = furl.reply(tub[0], name, kind, client_nonce, {"key": secret})
    assert secret.encode() not in b"".join(answer) and name.encode() not in b"".join(answer)
    assert furl.open_reply(answer, f, nonce) == (kind, {"key": secret})


def test_wrong_swiss_number_and_wrong_tub_are_refused():
    tub = _names()
    wrong_name = furl.make_furl(tub[0], [("127.0.0.1", 1)], furl.new_name())
    with pytest.raises(furl.Refused, match="unknown swiss number"):
        furl.check_request(furl.request(wrong_name)[0], *tub)
    wrong_tub = furl.make_furl(furl.new_name(), [("127.0.0.1", 1)], next(iter(tub[2])))
    with pytest.raises(furl.Refused, match="wrong tub"):
        furl.check_request(furl.request(wrong_tub)[0], *tub)
    pbu = furl.make_furl(None, [("127.0.0.1", 1)], next(iter(tub[2])), secure=False)
    with pytest.raises(furl.Refused, match="this tub is secure"):
        furl.check_request(furl.request(pbu)[0], *tub)
    with pytest.raises(furl.Refused, match="wrong tub"):
        furl.check_request(furl.request(wrong_tub)[0], tub[0], False, tub[2])


def test_refusals_reach_the_client_as_refused():
    with pytest.raises(furl.Refused, match="unknown swiss number"):
        furl.open_reply(furl.refusal("unknown swiss number"), _furl(), b"\0" * 32)


@pytest.mark.parametrize("frames", [
    [], [b"x"], [furl.PROTOCOL], [b"other/1", b"{}"], [furl.PROTOCOL, b"not json"], [furl.PROTOCOL, b"[]"],
    [furl.PROTOCOL, b'{"op": "resolve"}'], [furl.PROTOCOL, b'{"op": "other"}'],
    [furl.PROTOCOL, json.dumps({"op": "resolve", "nonce": "zz", "proof": "00"}).encode()],
    [furl.PROTOCOL, json.dumps({"op": "resolve", "nonce": "00" * 32, "proof": "00" * 31}).encode()],
    [furl.PROTOCOL, json.dumps({"op": "resolve", "nonce": "00" * 32, "proof": "00" * 32, "tub_id": 5}).encode()],
])
def test_malformed_requests_are_handshake_errors(frames):
    with pytest.raises(furl.HandshakeError):
        furl.check_request(frames, *_names())


def test_a_tampered_or_foreign_reply_is_not_trusted():
    tub = _names()
    name = next(iter(tub[2]))
    f = furl.make_furl(tub[0], [("127.0.0.1", 1)], name)
    frames, nonce = furl.request(f)
    _, kind, client_nonce = furl.check_request(frames, *tub)
    answer = furl.reply(tub[0], name, kind, client_nonce, {"key": "k"})
    message = json.loads(answer[1])
    for field, value in (("kind", "tc"), ("payload", "AAAA"), ("nonce", "11" * 32), ("mac", "22" * 32)):
        forged = [furl.PROTOCOL, json.dumps(dict(message, **{field: value})).encode()]
        with pytest.raises(furl.HandshakeError):
            furl.open_reply(forged, f, nonce)
    with pytest.raises(furl.HandshakeError, match="not authenticated"):
        furl.open_reply(answer, f, b"\1" * 32)  # an answer to someone else's request
    other_tub = furl.make_furl(furl.new_name(), f.hints, name)
    with pytest.raises(furl.HandshakeError, match="not authenticated"):
        furl.open_reply(answer, other_tub, nonce)


# --- ipcontroller's FURL options (CLI-04 rules)


def _controller_args(*argv):
    return controller_app.build_parser().parse_args(list(argv))


def test_reuse_needs_both_ports():
    for argv in (["-r"], ["-r", "--client-port", "10101"], ["-r", "--engine-port=10102"]):
        assert "needs fixed ports" in furlfiles.check_arguments(_controller_args(*argv))
    assert furlfiles.check_arguments(_controller_args("-r", "--client-port=10101", "--engine-port=10102")) is None
    assert "must be a port number" in furlfiles.check_arguments(_controller_args("--client-port", "70000"))


def test_which_controllers_write_furl_files(tmp_path):
    root = str(tmp_path)
    classic = os.path.join(root, "profile_default")
    assert furlfiles.wanted(_controller_args(), classic, root)
    assert not furlfiles.wanted(_controller_args("--cluster-id", "c1"), classic, root)
    assert not furlfiles.wanted(_controller_args(), os.path.join(root, "profile_other"), root)
    assert not furlfiles.wanted(_controller_args("--no-furl-files"), classic, root)
    for argv in (["--furl-files"], ["-x"], ["-y"], ["--client-port", "1"], ["--engine-furl-file", "/x"]):
        assert furlfiles.wanted(_controller_args("--cluster-id", "c1", *argv), classic, root), argv


def test_0_10_controller_options_parse():
    args = _controller_args("-xy", "-r", "--client-port=10101", "--engine-port=10102", "--client-ip=",
                            "--engine-location=example.org", "--multiengine-furl-file=/a", "--task-furl-file=/b",
                            "--engine-furl-file=/c", "-l", "/tmp/log/ipcontroller")
    assert (args.client_insecure, args.engine_insecure, args.reuse_furls) == (True, True, True)
    assert (args.client_port, args.engine_port, args.client_ip, args.engine_location) == (
        10101, 10102, "", "example.org")
    assert (args.multiengine_furl_file, args.task_furl_file, args.engine_furl_file) == ("/a", "/b", "/c")
    assert args.logfile == "/tmp/log/ipcontroller"


def test_furl_plan_binds_loopback_and_lists_every_host_for_a_wildcard(ipydir):
    tubs = furlfiles.LegacyFurls(_controller_args(), ipydir).tubs
    assert [(t.side, t.ip, t.locations, t.secure) for t in tubs] == [
        ("client", "127.0.0.1", ["127.0.0.1"], True), ("engine", "127.0.0.1", ["127.0.0.1"], True)]
    tubs = furlfiles.LegacyFurls(_controller_args("--client-ip=", "--location", "head", "-y"), ipydir).tubs
    assert (tubs[0].ip, tubs[0].locations) == ("*", ["head", "127.0.0.1"])
    assert not tubs[1].secure


def test_reuse_reads_tub_ids_and_swiss_numbers_back(ipydir):
    args = _controller_args("-r", "--client-port=10101", "--engine-port=10102")
    first = furlfiles.LegacyFurls(args, ipydir)
    first.prepare()
    for tub in first.tubs:
        tub.port = {"client": 10101, "engine": 10102}[tub.side]
    written = {}
    for tub in first.tubs:
        written.update(tub.furls())
    for kind, f in written.items():
        furl.write_furl_file(first.paths[kind], f)
    again = furlfiles.LegacyFurls(args, ipydir)
    again.prepare()
    reread = {}
    for tub in again.tubs:
        reread.update(tub.furls())
    assert reread == written
    # a file of the other security mode is not reused (0.10 deleted it)
    insecure = furlfiles.LegacyFurls(_controller_args("-r", "-x", "--client-port=10101", "--engine-port=10102"),
                                     ipydir)
    insecure.prepare()
    assert set(insecure.tubs[0].names).isdisjoint({written["mec"].name, written["tc"].name})
    assert set(insecure.tubs[1].names) == {written["engine"].name}
    # without -r, the old files are deleted and new names made
    fresh = furlfiles.LegacyFurls(_controller_args(), ipydir)
    fresh.prepare()
    assert not any(os.path.exists(p) for p in fresh.paths.values())
    assert {n for t in fresh.tubs for n in t.names}.isdisjoint({f.name for f in written.values()})


# --- ipengine's 0.10 options


def test_ipengine_0_10_options(tmp_path):
    from kernelpar.engine import app as engine_app

    args = engine_app.parse_args(["--furl-file=/x/ipcontroller-engine.furl", "-l", "/tmp/ipengine", "--mpi=mpi4py"])
    assert (args.furl_file, args.logfile, args.mpi) == ("/x/ipcontroller-engine.furl", "/tmp/ipengine", "mpi4py")


# --- ipcluster's 0.10 command line (CLI-06)


@pytest.mark.parametrize("argv,legacy", [
    (["local"], True), (["mpiexec", "-n", "4"], True), (["ssh"], True), (["-n", "4"], True), (["-n4"], True),
    (["--num=4"], True), (["start", "-n", "4"], False), (["stop"], False), (["list"], False), ([], False),
    (["--version"], False), (["-h"], False),
])
def test_dispatch_between_the_0_10_and_the_modern_command_line(argv, legacy):
    assert legacycli.is_legacy(argv) is legacy


def test_local_options_after_the_mode():
    args, controller_args = legacycli.parse(["local"])
    assert (args.mode, args.n, args.reuse, args.client_port, args.engine_port) == ("local", 2, False, 0, 0)
    assert controller_args == []
    args, controller_args = legacycli.parse(["local", "-n", "4", "-r", "--client-port", "10101",
                                             "--engine-port=10102", "-xy", "--logdir", "/tmp/logs", "--", "--ping", "200"])
    assert (args.n, args.reuse, args.client_port, args.engine_port, args.client_insecure, args.engine_insecure,
            args.logdir) == (4, True, 10101, 10102, True, True, "/tmp/logs")
    assert controller_args == ["--ping", "200"]
    assert legacycli.controller_arguments(args, "/tmp/logs") == [
        "--furl-files", "--client-furls-after-engines", "4", "-l", "/tmp/logs/ipcontroller", "-r",
        "--client-port", "10101", "--engine-port", "10102", "-x", "-y"]
    assert legacycli.parse(["-n", "3"])[0].mode == "local"  # 0.9's form


@pytest.mark.parametrize("argv,expected", [
    (["mpiexec", "-n", "8", "--mpi", "mpi4py"], {"n": 8, "mpi": "mpi4py"}),
    (["mpirun", "--mpi=pytrilinos"], {"n": 2, "mpi": "pytrilinos"}),
    (["pbs", "-n", "16", "-s", "pbs.tmpl", "-q", "long"], {"n": 16, "script": "pbs.tmpl", "queue": "long"}),
    (["pbs", "--pbs-script=p.sh"], {"script": "p.sh", "queue": None}),
    (["sge", "--sge-script", "s.sh", "--queue", "q"], {"script": "s.sh", "queue": "q"}),
    (["lsf", "--lsf-script", "l.sh"], {"script": "l.sh"}),
    (["ssh", "--clusterfile", "c.py", "--sshx", "x.sh", "-e"], {"clusterfile": "c.py", "sshx": "x.sh", "copyenvs": True}),
    (["ssh"], {"clusterfile": "clusterfile.py", "sshx": None, "copyenvs": False}),
])
def test_other_modes_parse_their_0_10_options(argv, expected):
    args, _ = legacycli.parse(argv)
    assert {k: getattr(args, k) for k in expected} == expected


@pytest.mark.parametrize("argv", [["pbs", "--mpi", "mpi4py"], ["local", "--queue", "q"], ["local", "-n", "-1"]])
def test_options_of_another_mode_are_usage_errors(argv, capsys):
    with pytest.raises(SystemExit) as info:
        legacycli.parse(argv)
    assert info.value.code == 2


@pytest.mark.parametrize("mode,launcher", [("mpiexec", "mpi"), ("mpirun", "mpi"), ("ssh", "ssh"),
                                           ("pbs", "pbs"), ("sge", "sge"), ("lsf", "lsf")])
def test_other_modes_say_plainly_which_launcher_is_missing(mode, launcher, ipydir, capsys):
    with pytest.raises(SystemExit) as info:
        app.main([mode, "-n", "4"])
    assert info.value.code == 1
    err = capsys.readouterr().err
    assert f"ipcluster {mode}: the {launcher!r} engine launcher is not available yet in kernelpar" in err
    assert "(issue 'launchers')" in err and "ipcluster local -n 4" in err
    assert not os.path.exists(os.path.join(ipydir, "profile_default", "security", "cluster-.json"))


def test_ipcluster_local_reuse_without_ports_is_an_error(ipydir, capsys):
    with pytest.raises(SystemExit) as info:
        app.main(["local", "-r", "--client-port", "10101"])
    assert info.value.code == 1
    assert "-r (reuse FURL files) needs fixed ports" in capsys.readouterr().err


def test_modern_command_line_no_longer_takes_0_10_modes():
    parser = app.build_parser()
    with pytest.raises(SystemExit):
        parser.parse_args(["local"])
    assert parser.parse_args(["start", "-n", "2"]).command == "start"
