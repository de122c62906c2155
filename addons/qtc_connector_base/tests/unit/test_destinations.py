"""The destination policy: which addresses are internal, which hosts a
backend's credentials may reach, and what the server configuration allows."""

import ipaddress

import pytest

from qtc_connector_base.lib.destinations import (
    DestinationPolicy,
    HostEntry,
    OutboundRefused,
    address_problem,
    host_matches,
    in_networks,
    parse_host_entries,
    parse_networks,
    secret_in_request,
)
from qtc_connector_base.lib.errors import BusinessError

SALESFORCE = DestinationPolicy(
    provider_label="Salesforce",
    provider_hosts=(
        "login.salesforce.com",
        "test.salesforce.com",
        "*.my.salesforce.com",
        "*.salesforce.com",
    ),
)
CALLBACK = DestinationPolicy(provider_label="PSA", secrets_to_provider_only=True)


@pytest.mark.parametrize(
    ("address", "problem"),
    [
        ("127.0.0.1", "a loopback address"),
        ("127.1.2.3", "a loopback address"),
        ("10.0.0.1", "a private address"),
        ("172.16.5.4", "a private address"),
        ("192.168.1.1", "a private address"),
        ("169.254.169.254", "a cloud metadata address"),
        ("169.254.170.2", "a cloud metadata address"),
        ("168.63.129.16", "a cloud metadata address"),
        ("100.100.100.200", "a cloud metadata address"),
        ("169.254.1.1", "a link-local address"),
        ("100.64.0.1", "a shared (carrier-grade NAT) address"),
        ("100.127.255.254", "a shared (carrier-grade NAT) address"),
        ("224.0.0.1", "a multicast address"),
        ("0.0.0.0", "an unspecified address"),  # noqa: S104 - not a bind
        ("240.0.0.1", "a private address"),
        ("255.255.255.255", "a private address"),
        ("198.18.0.1", "a private address"),
        ("::1", "a loopback address"),
        ("::", "an unspecified address"),
        ("fe80::1", "a link-local address"),
        ("fc00::1", "a private address"),
        ("fd00:ec2::254", "a cloud metadata address"),
        ("ff02::1", "a multicast address"),
        ("2001:db8::1", "a private address"),
        # IPv6 forms that reach an IPv4 host are judged by that host.
        ("::ffff:127.0.0.1", "a loopback address"),
        ("::ffff:169.254.169.254", "a cloud metadata address"),
        ("::127.0.0.1", "a loopback address"),
        ("2002:7f00:1::", "a loopback address"),
        ("64:ff9b::a9fe:a9fe", "a cloud metadata address"),
        ("64:ff9b::a00:1", "a private address"),
        ("not-an-address", "not an IP address"),
    ],
)
def test_internal_addresses_are_refused_with_their_kind(address, problem):
    assert address_problem(address) == problem


@pytest.mark.parametrize(
    "address",
    ["93.184.216.34", "8.8.8.8", "13.110.0.1", "2606:4700:4700::1111", "100.128.0.1"],
)
def test_public_addresses_pass(address):
    assert address_problem(address) is None
    assert address_problem(ipaddress.ip_address(address)) is None


@pytest.mark.parametrize(
    ("host", "pattern", "expected"),
    [
        ("login.salesforce.com", "login.salesforce.com", True),
        ("LOGIN.Salesforce.com.", "login.salesforce.com", True),
        ("acme.my.salesforce.com", "*.my.salesforce.com", True),
        ("a.b.my.salesforce.com", "*.my.salesforce.com", True),
        ("my.salesforce.com", "*.my.salesforce.com", False),
        ("evilsalesforce.com", "*.salesforce.com", False),
        ("salesforce.com.evil.test", "*.salesforce.com", False),
        ("login.salesforce.com", "test.salesforce.com", False),
        ("127.0.0.1", "127.0.0.1", True),
        ("::1", "0:0:0:0:0:0:0:1", True),
        ("", "*.salesforce.com", False),
    ],
)
def test_host_matching(host, pattern, expected):
    assert host_matches(host, pattern) is expected


def test_host_entries_parse_hosts_ports_wildcards_and_ipv6():
    entries = parse_host_entries(
        "127.0.0.1:8443, standin.test  *.corp.example,[::1]:9000 ::2\nGov.Example:443"
    )
    assert [str(e) for e in entries] == [
        "127.0.0.1:8443",
        "standin.test",
        "*.corp.example",
        "[::1]:9000",
        "::2",
        "gov.example:443",
    ]
    assert entries[0] == HostEntry("127.0.0.1", 8443)
    assert entries[0].matches("127.0.0.1", 8443)
    assert not entries[0].matches("127.0.0.1", 8444)
    assert entries[1].matches("standin.test", 1)
    assert entries[2].matches("psa.corp.example", 443)


@pytest.mark.parametrize(
    "text",
    ["http://x.test", "a.test:0", "a.test:70000", "a.test:x", "bad host!", "[::1"],
)
def test_bad_host_entry_names_the_option(text):
    with pytest.raises(OutboundRefused) as caught:
        parse_host_entries(text)
    assert "qtc_allowed_hosts" in str(caught.value)
    assert caught.value.category == "configuration"


def test_networks_parse_and_match():
    networks = parse_networks("10.20.0.0/16, 203.0.113.7\n2001:db8::/32")
    assert in_networks("10.20.3.4", networks)
    assert in_networks("203.0.113.7", networks)
    assert in_networks("::ffff:10.20.3.4", networks), "IPv4-mapped counts as IPv4"
    assert in_networks("2001:db8::5", networks)
    assert not in_networks("10.21.0.1", networks)
    assert not in_networks("garbage", networks)


def test_bad_network_names_the_option_and_the_entry():
    with pytest.raises(ValueError, match=r"qtc_allowed_networks: '10\.0\.0\.0/33'"):
        parse_networks("10.0.0.0/33")


# -- check_url --------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "https://login.salesforce.com/services/oauth2/token",
        "https://test.salesforce.com/services/oauth2/token",
        "https://acme.my.salesforce.com/services/data/v61.0/query",
        "https://acme--uat.sandbox.my.salesforce.com/services/data",
        "https://na1.salesforce.com/services/data",
    ],
)
def test_provider_hosts_are_allowed(url):
    SALESFORCE.check_url(url, carries_secret=True)


@pytest.mark.parametrize(
    "url",
    [
        "https://attacker.example/services/oauth2/token",
        "https://salesforce.com.attacker.example/",
        "https://my.salesforce.com.evil.test/",
    ],
)
def test_other_hosts_are_refused_for_a_provider_with_hosts(url):
    with pytest.raises(OutboundRefused) as caught:
        SALESFORCE.check_url(url)
    message = str(caught.value)
    assert "is not a host of Salesforce (login.salesforce.com" in message
    assert "credentials are sent nowhere else" in message
    assert "qtc_allowed_hosts" in message
    assert isinstance(caught.value, BusinessError)
    assert caught.value.category == "configuration"


def test_server_allowed_stand_in_receives_credentials():
    policy = DestinationPolicy(
        provider_label="Salesforce",
        provider_hosts=SALESFORCE.provider_hosts,
        allowed_hosts=parse_host_entries("127.0.0.1:8443"),
    )
    assert policy.check_url("https://127.0.0.1:8443/services/oauth2/token") == (
        "127.0.0.1",
        8443,
    )
    with pytest.raises(OutboundRefused, match="not a host of Salesforce"):
        policy.check_url("https://127.0.0.1:8444/services/oauth2/token")


@pytest.mark.parametrize(
    ("url", "kind"),
    [
        ("http://127.0.0.1:5432/", "a loopback address"),
        ("http://169.254.169.254/latest/meta-data/", "a cloud metadata address"),
        ("http://[::1]:8069/web", "a loopback address"),
        ("https://10.1.2.3/hooks", "a private address"),
        ("http://0.0.0.0:8069/", "an unspecified address"),
        ("http://[::ffff:7f00:1]/", "a loopback address"),
    ],
)
def test_internal_address_literals_are_refused_with_what_to_change(url, kind):
    with pytest.raises(OutboundRefused) as caught:
        CALLBACK.check_url(url)
    message = str(caught.value)
    assert kind in message
    assert "Use the system's public https address" in message
    assert "qtc_allowed_networks" in message


def test_allowed_network_lets_an_internal_address_through():
    policy = DestinationPolicy(allowed_networks=parse_networks("10.1.0.0/16"))
    policy.check_url("https://10.1.2.3/hooks")
    with pytest.raises(OutboundRefused):
        policy.check_url("https://10.2.0.1/hooks")


def test_host_entry_does_not_unlock_metadata_addresses():
    policy = DestinationPolicy(allowed_hosts=parse_host_entries("169.254.169.254"))
    with pytest.raises(OutboundRefused, match="cloud metadata"):
        policy.check_url("http://169.254.169.254/latest/meta-data/")
    loopback = DestinationPolicy(allowed_hosts=parse_host_entries("127.0.0.1"))
    loopback.check_url("http://127.0.0.1:9/")


def test_metadata_address_needs_an_explicit_network():
    policy = DestinationPolicy(allowed_networks=parse_networks("169.254.169.254/32"))
    policy.check_url("http://169.254.169.254/")


@pytest.mark.parametrize(
    "url", ["ftp://files.example/x", "file:///etc/passwd", "https:///nohost", "", "x"]
)
def test_only_http_urls_with_a_host(url):
    with pytest.raises(OutboundRefused, match="is not an http"):
        CALLBACK.check_url(url)


def test_bad_port_is_refused():
    with pytest.raises(OutboundRefused, match="is not an http"):
        CALLBACK.check_url("https://psa.example:99999/")


def test_production_requires_https():
    policy = DestinationPolicy(require_https=True)
    policy.check_url("https://psa.example/hooks")
    with pytest.raises(OutboundRefused) as caught:
        policy.check_url("http://psa.example/hooks")
    assert "is not https" in str(caught.value)
    assert "Use the https:// address" in str(caught.value)


def test_callback_may_not_carry_a_stored_secret():
    CALLBACK.check_url("https://psa.example/hooks", carries_secret=False)
    with pytest.raises(OutboundRefused, match="would carry one of the backend's"):
        CALLBACK.check_url("https://psa.example/hooks", carries_secret=True)
    lax = DestinationPolicy()
    lax.check_url("https://psa.example/hooks", carries_secret=True)


SECRET = "whsec_stored_secret_value_1"


@pytest.mark.parametrize(
    "where",
    [
        {"url": f"https://psa.example/hooks/{SECRET}"},
        {"url": "https://psa.example/hooks?k=whsec%5Fstored%5Fsecret%5Fvalue%5F1"},
        {"headers": {"Authorization": f"Bearer {SECRET}"}},
        {"params": {"key": SECRET}},
        {"auth": (SECRET, "")},
        {"body": f'{{"secret": "{SECRET}"}}'.encode()},
        {"body": "token=whsec_stored_secret_value_1&x=1"},
        {"body": "token=whsec%5Fstored%5Fsecret%5Fvalue%5F1"},
        {"body": {"token": SECRET}},
    ],
)
def test_secret_is_found_wherever_a_request_carries_it(where):
    assert secret_in_request([SECRET], **where)


def test_signature_of_a_secret_is_not_the_secret():
    assert not secret_in_request(
        [SECRET],
        url="https://psa.example/hooks",
        headers={"X-QTC-Signature": "t=1,v1=" + "ab" * 32},
        body=b'{"invoice": "INV/1"}',
    )
    # Secrets too short to search for are ignored (they match ordinary text).
    assert not secret_in_request(["abc"], body=b"abcdef")
