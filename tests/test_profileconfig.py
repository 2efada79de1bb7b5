"""A profile's traitlets configuration (ipcluster_config.py, ipcontroller_config.py), read
as far as kernelpar has equivalents: explicit arguments win, unknown traits are named."""

import json
import logging

import pytest
from traitlets.config import Config

from kernelpar import profileconfig
from kernelpar.cluster import Cluster
from kernelpar.controller import app as controller_app
from kernelpar.wire import connection


def write(profile_dir, name, text):
    profile_dir.mkdir(parents=True, exist_ok=True)
    (profile_dir / name).write_text(text)


def test_cluster_takes_the_profile_config_unless_told_otherwise(tmp_path, caplog):
    profile = tmp_path / "profile_p"
    write(profile, "ipcluster_config.py", "c = get_config()  # noqa\n"
          "c.Cluster.n = 7\nc.Cluster.delay = 0.5\n"
          "c.IPClusterEngines.engine_launcher_class = 'ipyparallel.cluster.launcher.LocalEngineSetLauncher'\n"
          "c.LocalControllerLauncher.controller_args = ['--ping', '500']\n"
          "c.Cluster.no_such_trait = 1\n")
    with caplog.at_level(logging.WARNING, logger="kernelpar.config"):
        cluster = Cluster(profile_dir=str(profile))
    assert (cluster.n, cluster.delay, cluster.controller_args) == (7, 0.5, ["--ping", "500"])
    assert cluster.engine_launcher_class.name == "local"
    assert "Cluster.no_such_trait" in caplog.text
    # explicit arguments win, then config=, then the profile
    assert Cluster(n=2, profile_dir=str(profile)).n == 2
    assert Cluster(profile_dir=str(profile), config=Config({"Cluster": {"n": 3}})).n == 3
    assert Cluster(profile_dir=str(profile), load_profile=False).n is None


def test_a_broken_config_file_is_a_warning(tmp_path, caplog):
    profile = tmp_path / "profile_b"
    write(profile, "ipcluster_config.py", "c = get_config()  # noqa\nraise RuntimeError('oops')\n")
    with caplog.at_level(logging.WARNING, logger="kernelpar.config"):
        assert Cluster(profile_dir=str(profile)).n is None
    assert "oops" in caplog.text


def test_controller_options_from_ipcontroller_config(tmp_path):
    profile = tmp_path / "profile_c"
    write(profile, "ipcontroller_config.py", "c = get_config()  # noqa\n"
          "c.HeartMonitor.period = 1500\nc.TaskScheduler.hwm = 0\nc.TaskScheduler.scheme_name = 'lru'\n"
          "c.IPController.db_class = 'ipyparallel.controller.sqlitedb.SQLiteDB'\nc.DictDB.record_limit = 50\n")
    args = controller_app.parse_args(["--profile-dir", str(profile)])
    assert (args.ping, args.hwm, args.scheme, args.db, args.record_limit) == (1500.0, 0, "lru", "sqlitedb", 50)
    args = controller_app.parse_args(["--profile-dir", str(profile), "--scheme", "twobin", "--ping", "200"])
    assert (args.scheme, args.ping, args.hwm) == ("twobin", 200.0, 0)
    write(profile, "ipcontroller_config.json", json.dumps({"TaskScheduler": {"scheme_name": "bogus"}}))
    (profile / "ipcontroller_config.py").unlink()
    assert controller_app.parse_args(["--profile-dir", str(profile)]).scheme == "leastload"


def test_options_names_what_it_cannot_use():
    config = Config({"TaskScheduler": {"hwm": "x"}, "IPController": {"db_class": "MongoDB"}})
    assert profileconfig.options(config, profileconfig.CONTROLLER_TRAITS, "test") == {}


@pytest.mark.timeout(120)
def test_a_cluster_started_with_a_configured_profile(tmp_path):
    profile = tmp_path / "profile_live"
    write(profile, "ipcontroller_config.py", "c = get_config()  # noqa\nc.TaskScheduler.scheme_name = 'lru'\n")
    write(profile, "ipcluster_config.py", "c = get_config()  # noqa\nc.Cluster.n = 1\n")
    with Cluster(profile_dir=str(profile)) as rc:
        assert len(rc.ids) == 1
        with open(connection.connection_file(str(profile), "client", rc.cluster.cluster_id)) as f:
            assert json.load(f)["task_scheme"] == "lru"
