"""Callbacks to a CMS on a private network: allowed per client by network
(`callback_allow_networks`), not all-or-nothing; a callback host that does not resolve, or
resolves outside what its client allows, is named at start and by `autotag check`; delivery
still checks every time (DNS answers change)."""

import ipaddress

import pytest

from worker.errors import ConfigError, DeliveryError
from worker.service.delivery import check_callback_target
from worker.service.preflight import callback_problems
from worker.service.settings import load_settings

from .reliability.test_faults import wait_until
from .stack import Stack, new_secret

TEN = (ipaddress.ip_network("10.0.0.0/8"),)


def test_an_allowed_network_lets_its_addresses_through_and_only_them():
    assert check_callback_target("http://10.20.30.40:8000/hooks", allow_private=False, allow_networks=TEN) == "10.20.30.40"
    for url in ("http://192.168.1.10/hooks", "http://127.0.0.1/hooks", "http://169.254.169.254/latest"):
        with pytest.raises(DeliveryError, match=r"outside its callback_allow_networks \(10.0.0.0/8\)") as raised:
            check_callback_target(url, allow_private=False, allow_networks=TEN)
        assert raised.value.permanent


def test_a_bad_network_is_refused_in_the_config(tmp_path):
    path = tmp_path / "a.toml"
    path.write_text(f'[[clients]]\nid = "n"\ntoken = "t"\ncallback_url = "https://x"\ncallback_secret = "{new_secret()}"\n'
                    'callback_allow_networks = ["10.0.0.1/8"]\n')
    with pytest.raises(ConfigError, match=r"clients\[0\]: callback_allow_networks: '10.0.0.1/8' is not a network"):
        load_settings(path, environ={})


def _clients(entries: dict[str, tuple[str, str]]) -> str:
    return "".join(f'[[clients]]\nid = "{name}"\ntoken = "token-{name}-0123456789"\ncallback_url = "{url}"\n'
                   f'callback_secret = "{new_secret()}"\n{extra}\n' for name, (url, extra) in entries.items())


def test_problems_are_named_per_client(tmp_path):
    path = tmp_path / "a.toml"
    path.write_text(_clients({
        "lan": ("http://10.1.2.3/hooks", 'callback_allow_networks = ["10.0.0.0/8"]'),
        "lan-wrong": ("http://192.168.7.7/hooks", 'callback_allow_networks = ["10.0.0.0/8"]'),
        "nowhere": ("https://cms.invalid/hooks", ""),
        "loopback": ("http://127.0.0.1:9/hooks", ""),
        "demo": ("http://127.0.0.1:9/hooks", "allow_private_callback = true"),
    }))
    problems = callback_problems(load_settings(path, environ={}))
    assert [p.split(":")[0] for p in problems] == ["client 'lan-wrong'", "client 'nowhere'", "client 'loopback'"]
    assert "192.168.7.7 outside its callback_allow_networks" in problems[0]
    assert "'cms.invalid' does not resolve" in problems[1]


def test_named_at_ingress_start_and_refused_by_autotag_check(tmp_path):
    """Before any event is published, the ingress's log names the misconfigured clients, and
    `autotag check` (compose runs it before the ingress and the worker) exits 2 naming them."""
    stack = Stack(tmp_path, workers=0, extra_config=_clients({"nowhere": ("https://cms.invalid/hooks", ""),
                                                              "loopback": ("http://127.0.0.1:9/hooks", "")}))
    try:
        stack.start_ingress_only()
        logged = (tmp_path / "ingress.log").read_text()
        assert "autotag: warning: client 'nowhere': callback host 'cms.invalid' does not resolve" in logged
        assert "autotag: warning: client 'loopback': callback host '127.0.0.1' resolves to non-public address" in logged
        checked = stack.cli("check")
        assert checked.returncode == 2
        assert [line.split(":")[:2] for line in checked.stderr.splitlines()] == [["autotag", " client 'nowhere'"],
                                                                                  ["autotag", " client 'loopback'"]]
        assert "Traceback" not in checked.stderr
    finally:
        stack.stop()


def test_autotag_check_passes_a_good_config(tmp_path):
    stack = Stack(tmp_path, workers=0)
    try:
        checked = stack.cli("check")
        assert checked.returncode == 0 and "configuration OK: 1 client(s)" in checked.stdout, checked.stderr
    finally:
        stack.stop()


def test_callbacks_reach_an_allowed_network_and_not_another(tmp_path):
    """Through a real worker: a client whose CMS (the loopback stub) is in its
    callback_allow_networks gets its tags; one whose networks do not hold it gets a dead letter
    naming them, at the first delivery's check."""
    stack = Stack(tmp_path, loglevel="WARNING")
    config = stack.config.read_text()
    for name, networks in (("lan", '["127.0.0.0/8"]'), ("lan-wrong", '["10.0.0.0/8"]')):
        config += (f'\n[[clients]]\nid = "{name}"\ntoken = "token-{name}-0123456789"\ncallback_url = "{stack.cms.url}"\n'
                   f'callback_secret = "{stack.cms.secret}"\ncallback_allow_networks = {networks}\n')
    stack.config.write_text(config)
    stack.start()
    try:
        for name in ("lan", "lan-wrong"):
            raw = (f'{{"id": "net-{name}", "type": "article.published", "occurred_at": "2026-11-22T10:00:00Z", '
                   f'"article": {{"id": "net-{name}", "revision": 1, "title": "T", "body": "Tanks for Warsaw."}}}}').encode()
            assert stack.post_raw(raw, token=f"token-{name}-0123456789").status_code == 202
        assert stack.cms.wait_for("net-lan")[0]["payload"]["article"]["id"] == "net-lan"
        dead = wait_until(lambda: [r for r in stack.ledger.listing("dead") if r["client"] == "lan-wrong"], 30, "lan-wrong's dead letter")
        assert "outside its callback_allow_networks (10.0.0.0/8)" in dead[0]["last_error"]
        assert not stack.cms.for_article("net-lan-wrong", ok_only=False)
    finally:
        stack.stop()
