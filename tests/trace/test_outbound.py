"""Which addresses a webhook may reach: the rule on its own, without a network."""

from __future__ import annotations

import ipaddress

import pytest

from medtrace.errors import InvalidInput
from medtrace.outbound import check_url, forbidden

LAB = ipaddress.ip_network("10.20.0.0/16")


@pytest.mark.parametrize(
    ("address", "allowed", "reason"),
    [
        ("93.184.215.14", [], None),
        ("2606:2800:21f:cb07:6820:80da:af6b:8b2c", [], None),
        ("127.0.0.1", [], "not a public address"),
        ("::ffff:127.0.0.1", [], "not a public address"),
        ("::ffff:10.20.1.1", [LAB], None),
        ("10.20.1.1", [LAB], None),
        ("10.21.1.1", [LAB], "not a public address"),
        ("100.64.0.1", [], "not a public address"),
        ("239.1.2.3", [], "a multicast address"),
        ("ff02::1", [], "a multicast address"),
        ("169.254.169.254", [ipaddress.ip_network("169.254.0.0/16")], "a cloud metadata service"),
        ("168.63.129.16", [], "a cloud metadata service"),
    ],
)
def test_an_address_is_judged_by_what_it_is_and_what_the_operator_allowed(
    address: str, allowed: list[ipaddress.IPv4Network], reason: str | None
) -> None:
    verdict = forbidden(ipaddress.ip_address(address), allowed)
    assert verdict == reason or (reason is not None and (verdict or "").startswith(reason))


def test_a_url_is_pinned_to_the_address_checked_and_keeps_its_name() -> None:
    target = check_url("https://[2606:2800:21f:cb07:6820:80da:af6b:8b2c]:8443/hook?x=1", allowed=[])
    assert (
        str(target.pinned_url()) == "https://[2606:2800:21f:cb07:6820:80da:af6b:8b2c]:8443/hook?x=1"
    )
    assert target.headers() == {"Host": "[2606:2800:21f:cb07:6820:80da:af6b:8b2c]:8443"}
    assert target.extensions() == {"sni_hostname": "2606:2800:21f:cb07:6820:80da:af6b:8b2c"}
    plain = check_url("http://93.184.215.14/hook", allowed=[])
    assert (str(plain.address), plain.extensions()) == ("93.184.215.14", {})


@pytest.mark.parametrize(
    ("url", "rule"),
    [
        ("ftp://93.184.215.14/", "webhook.bad_url"),
        ("/relative/hook", "webhook.bad_url"),
        ("http://10.20.1.1/", "webhook.forbidden_address"),
        ("http://0x7f000001/", "webhook.forbidden_address"),
    ],
)
def test_a_url_that_is_no_webhook_is_refused_by_its_rule(url: str, rule: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        check_url(url, allowed=[])
    assert refused.value.rule == rule
