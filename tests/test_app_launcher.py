"""``python -m app`` listens on loopback only, whatever folder it is started from."""

from __future__ import annotations

import ipaddress
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
LISTEN = "0A"  # TCP state in /proc/net/tcp*


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _proc_address(hex_addr: str) -> str:
    raw = bytes.fromhex(hex_addr)
    # /proc/net/tcp* print each 32-bit word in host (little-endian) order
    words = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
    return str(ipaddress.ip_address(words))


def listening_addresses(port: int) -> set[str]:
    """Local addresses of the sockets listening on TCP ``port`` (IPv4 and IPv6)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        path = Path(table)
        if not path.is_file():
            continue
        for line in path.read_text().splitlines()[1:]:
            fields = line.split()
            addr, hex_port = fields[1].split(":")
            if fields[3] == LISTEN and int(hex_port, 16) == port:
                found.add(_proc_address(addr))
    return found


def test_launcher_arguments_bind_loopback_and_let_the_command_line_win(tmp_path):
    from app.__main__ import DEFAULT_ADDRESS, MAIN, streamlit_argv

    args = streamlit_argv(["--server.port", "9999"])
    assert args[:2] == ["run", str(MAIN)]
    i = args.index("--server.address")
    assert args[i + 1] == DEFAULT_ADDRESS == "127.0.0.1"
    assert args[args.index("--server.headless") + 1] == "true"
    assert args[-2:] == ["--server.port", "9999"]  # user flags come last, so they win
    # A config file without an address (or with another one) still gets loopback.
    cfg = tmp_path / "config.toml"
    cfg.write_text('[server]\naddress = "localhost"\nheadless = true\n')
    args = streamlit_argv([], config=cfg)
    assert args[args.index("--server.address") + 1] == "127.0.0.1"


@pytest.mark.skipif(not Path("/proc/net/tcp").is_file(), reason="needs Linux /proc/net/tcp")
def test_app_started_from_another_folder_listens_on_loopback_only(tmp_path):
    port = _free_port()
    elsewhere = tmp_path / "elsewhere"  # no .streamlit/config.toml here
    elsewhere.mkdir()
    roots = tmp_path / "roots"
    roots.mkdir()
    env = dict(os.environ, PYTHONPATH=str(REPO), DRGI_LAB_CHECKPOINTS=str(roots),
               DRGI_LAB_DATA=str(roots), OMP_WAIT_POLICY="PASSIVE", HF_HUB_OFFLINE="1")
    log = (tmp_path / "server.log").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "app", "--server.port", str(port)],
                            cwd=elsewhere, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.time() + 60
        healthy = False
        while time.time() < deadline and proc.poll() is None:
            try:
                url = f"http://127.0.0.1:{port}/_stcore/health"
                with urllib.request.urlopen(url, timeout=2) as r:
                    if r.read().decode().strip() == "ok":
                        healthy = True
                        break
            except OSError:
                pass
            time.sleep(0.5)
        log.flush()
        out = (tmp_path / "server.log").read_text(errors="replace")[-3000:]
        assert healthy, f"the app did not become healthy on 127.0.0.1:{port}:\n{out}"
        assert listening_addresses(port) == {"127.0.0.1"}, out
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        log.close()


def test_demo_flag_prepares_the_demo_before_serving_and_stops_on_failure(monkeypatch):
    """`make app` runs `python -m app --demo`: the demo runs and bundles first (what `python -m
    tvr.demo` and `python -m analysis.export --demo` do), then the warm-up and the server,
    which never sees the flag."""
    from streamlit.web import cli as stcli

    import analysis.export
    import app.warmup
    import tvr.demo.__main__
    from app import __main__ as launcher

    calls: list = []
    status = {"export": 0}
    monkeypatch.setattr(tvr.demo.__main__, "main", lambda argv: calls.append(("demo", argv)) or 0)
    monkeypatch.setattr(analysis.export, "main",
                        lambda argv: calls.append(("export", argv)) or status["export"])
    monkeypatch.setattr(app.warmup, "start_server_warm_up", lambda: calls.append(("warm-up",)))
    monkeypatch.setattr(stcli, "main", lambda args, **kw: calls.append(("serve", args)))
    assert launcher.main(["--demo", "--server.port", "8599"]) == 0
    assert [c[0] for c in calls] == ["demo", "export", "warm-up", "serve"]
    assert calls[0][1] == [] and calls[1][1] == ["--demo"]
    assert "--demo" not in calls[3][1] and calls[3][1][-2:] == ["--server.port", "8599"]
    calls.clear()
    status["export"] = 1  # e.g. a demo run is missing: no server
    assert launcher.main(["--demo"]) == 1
    assert [c[0] for c in calls] == ["demo", "export"]
    calls.clear()
    assert launcher.main([]) == 0  # plain `python -m app` serves what is there
    assert [c[0] for c in calls] == ["warm-up", "serve"]
