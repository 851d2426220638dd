"""Hot reload (issue 4): a new library_path for a sandboxed library_id, applied on SIGHUP,
starts a new pool, sends new streams to it, lets the old pool finish its streams and stops it
— no request dropped."""

import json
import shutil
import signal
import threading
import time

import yaml

from conftest import http_request, wait_until
from test_golang import PLUGINS_SO
from test_sandbox_failures import catalogue_config


def library(c, library_id="victim"):
    libs = json.loads(c.admin("/golang/sandboxes")[1])["libraries"]
    return [lib for lib in libs if lib["library_id"] == library_id][0]


def with_path(cfg, path):
    for l in cfg["static_resources"]["listeners"]:
        for f in l["filter_chains"][0]["filters"][0]["typed_config"]["http_filters"]:
            tc = f.get("typed_config", {})
            if tc.get("library_id") == "victim":
                tc["library_path"] = path
    return cfg


def test_sighup_moves_new_streams_to_the_new_library_and_drains_the_old(start_corral, upstream,
                                                                         tmp_path):
    v1, v2 = tmp_path / "v1.so", tmp_path / "v2.so"
    shutil.copy(PLUGINS_SO, v1)
    shutil.copy(PLUGINS_SO, v2)
    cfg = with_path(catalogue_config("headers", upstream.port), str(v1))
    c = start_corral(cfg)
    old_pids = sorted(p["pid"] for p in library(c)["processes"])
    assert library(c)["library_path"] == str(v1)
    # Requests in flight on the old pool across the reload, and a steady stream of new ones.
    slow = []
    threads = [threading.Thread(target=lambda: slow.append(
        http_request(c.port("victim"), "/slow?ms=1500")[0].status)) for _ in range(3)]
    for t in threads:
        t.start()
    time.sleep(0.2)
    with open(c.config_path, "w") as f:
        yaml.safe_dump(with_path(cfg, str(v2)), f)
    c.proc.send_signal(signal.SIGHUP)
    statuses = []
    deadline = time.time() + 3
    while time.time() < deadline:
        statuses.append(http_request(c.port("victim"), "/echo")[0].status)
    for t in threads:
        t.join()
    assert slow == [200, 200, 200]
    assert set(statuses) == {200}, statuses
    lib = library(c)
    assert lib["library_path"] == str(v2)
    new_pids = sorted(p["pid"] for p in lib["processes"])
    assert not set(new_pids) & set(old_pids)
    # The old processes are stopped once their streams are done.
    assert wait_until(lambda: all(not _alive(p) for p in old_pids)), old_pids
    assert "reloaded from " + str(v2) in c.stderr()


def test_a_reload_to_a_broken_library_keeps_the_running_one(start_corral, upstream, tmp_path):
    bad = tmp_path / "bad.so"
    bad.write_bytes(b"not an ELF file")
    cfg = catalogue_config("headers", upstream.port)
    c = start_corral(cfg)
    path = library(c)["library_path"]
    with open(c.config_path, "w") as f:
        yaml.safe_dump(with_path(cfg, str(bad)), f)
    c.proc.send_signal(signal.SIGHUP)
    assert wait_until(lambda: "reload refused" in c.stderr())
    assert library(c)["library_path"] == path
    assert http_request(c.port("victim"), "/echo")[0].status == 200


def _alive(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            return "State:\tZ" not in f.read()
    except OSError:
        return False
