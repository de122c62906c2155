"""Where outbound requests may go: the destination policy of the HTTP client.

Two rules, both applied before anything is sent:

- **Secrets go only to their provider.** A provider declares the hosts it
  talks to (``login.salesforce.com``, ``*.my.salesforce.com``...). A backend's
  requests carry its credentials (API keys, tokens, signed assertions), so a
  request to any other host is refused. A provider that declares no host (a
  system of the customer's own, such as a PSA callback) may be called anywhere
  public, but a request that would carry one of the backend's stored secrets
  is refused. The server configuration can add hosts (a local stand-in): never
  the user interface.
- **No requests into the server's own networks.** After DNS resolution, an
  address that is loopback, private, link-local, shared (CGNAT), multicast,
  unspecified, reserved or a cloud metadata service is refused, unless the
  server configuration allows it. The check runs on the address the
  connection is actually made to (see ``http.py``), so a name that resolves
  differently between a check and the connection (DNS rebinding) gains
  nothing.

Server configuration (Odoo config file option, else environment variable):

- ``qtc_allowed_hosts`` / ``QTC_ALLOWED_HOSTS``: comma- or space-separated
  ``host``, ``host:port``, ``*.domain``, ``[ipv6]:port`` entries. A matching
  host may receive any backend's credentials, and may resolve to a private
  or loopback address (not to a metadata address).
- ``qtc_allowed_networks`` / ``QTC_ALLOWED_NETWORKS``: CIDR networks
  (``10.20.0.0/16``, ``fd00::/8``) requests may connect to, whatever host
  name led there. Credentials still go only to their provider's hosts.
"""

import ipaddress
import re
from dataclasses import dataclass
from urllib.parse import unquote, unquote_plus, urlsplit

from .errors import BusinessError

HOW_TO_ALLOW = (
    "the server administrator can allow it in the Odoo configuration file "
    "(qtc_allowed_hosts for a host, qtc_allowed_networks for a network)"
)
DEFAULT_PORTS = {"http": 80, "https": 443}
# Addresses of cloud instance metadata services: they hand out credentials of
# the machine itself. Refused even when a host entry allows private addresses.
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(address)
    for address in (
        "169.254.169.254",  # AWS, GCP, Azure, OpenStack, DigitalOcean...
        "169.254.170.2",  # AWS ECS task metadata
        "168.63.129.16",  # Azure wire server (a public-looking address)
        "100.100.100.200",  # Alibaba Cloud
        "fd00:ec2::254",  # AWS over IPv6
    )
)
SHARED_ADDRESS_SPACE = ipaddress.ip_network("100.64.0.0/10")  # CGNAT, RFC 6598
NAT64_PREFIX = ipaddress.ip_network("64:ff9b::/96")
IPV4_COMPATIBLE = ipaddress.ip_network("::/96")
# Secrets shorter than this are not searched for in outgoing requests: they
# would match ordinary text (real credentials are far longer).
MIN_SECRET_SCAN = 8
_HOST_RE = re.compile(r"^(\*\.)?[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?(\.[a-z0-9_-]+)*\.?$")


class OutboundRefused(BusinessError):
    """A request refused before it was sent: the destination is not allowed.

    A configuration problem for a person (the message says what to change),
    never retried.
    """

    def __init__(self, message, **kwargs):
        kwargs.setdefault("category", "configuration")
        super().__init__(message, **kwargs)


@dataclass(frozen=True)
class HostEntry:
    """One allowed host: a name, ``*.suffix`` or address, and maybe a port."""

    pattern: str
    port: int | None = None

    def matches(self, host, port):
        return (self.port is None or self.port == port) and host_matches(
            host, self.pattern
        )

    def __str__(self):
        if self.port is None:
            return self.pattern
        host = f"[{self.pattern}]" if ":" in self.pattern else self.pattern
        return f"{host}:{self.port}"


def normalize_host(host):
    """Lower case, without a trailing dot or IPv6 brackets; addresses in
    their canonical form (so ``::0001`` and ``::1`` are one host)."""
    host = (host or "").strip().lower().rstrip(".")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    address = as_address(host)
    return str(address) if address else host


def as_address(host):
    """The ``ipaddress`` object of an address literal, else ``None``."""
    try:
        return ipaddress.ip_address((host or "").split("%", 1)[0])
    except ValueError:
        return None


def host_matches(host, pattern):
    """True when ``host`` is ``pattern``, or under it for ``*.suffix``
    (``*.salesforce.com`` takes ``a.my.salesforce.com``, not
    ``salesforce.com`` nor ``evilsalesforce.com``)."""
    host, pattern = normalize_host(host), normalize_host(pattern)
    if not host or not pattern:
        return False
    if pattern.startswith("*."):
        return host.endswith(pattern[1:]) and len(host) > len(pattern) - 1
    return host == pattern


def parse_host_entries(text, option="qtc_allowed_hosts"):
    """``HostEntry`` tuples from a comma- or space-separated option value.

    :raises OutboundRefused: an entry that is not a host, ``host:port``,
        ``*.domain`` or ``[ipv6]:port`` (the option is named, so the
        administrator knows what to fix; nothing is allowed meanwhile)
    """
    entries = []
    for raw in re.split(r"[\s,]+", text or ""):
        if not raw:
            continue
        entry = _parse_host_entry(raw.strip().lower())
        if entry is None:
            raise OutboundRefused(
                f"The server option {option} holds {raw[:80]!r}, which is not "
                "a host, host:port, *.domain or [IPv6]:port: the server "
                "administrator must correct it."
            )
        entries.append(entry)
    return tuple(entries)


def _parse_host_entry(raw):
    host, port = raw, None
    if raw.startswith("["):
        host, closed, rest = raw[1:].partition("]")
        if not closed:
            return None
        if rest:
            if not rest.startswith(":"):
                return None
            port = rest[1:]
    elif raw.count(":") == 1:
        host, port = raw.split(":")
    if port is not None:
        if not port.isdigit() or not 0 < int(port) < 65536:
            return None
        port = int(port)
    address = as_address(host)
    if address is not None:
        return HostEntry(str(address), port)
    if not _HOST_RE.match(host) or ":" in host:
        return None
    return HostEntry(host.rstrip("."), port)


def parse_networks(text, option="qtc_allowed_networks"):
    """IP networks from a comma-, space- or line-separated value
    (``10.0.0.0/8``, ``203.0.113.7``, ``2001:db8::/32``).

    :raises ValueError: an entry that is not a network, naming it and ``option``
    """
    networks = []
    for raw in re.split(r"[\s,]+", text or ""):
        if not raw:
            continue
        try:
            networks.append(ipaddress.ip_network(raw, strict=False))
        except ValueError:
            raise ValueError(
                f"{option}: {raw[:80]!r} is not an IP network such as "
                "203.0.113.0/24 or 2001:db8::/32"
            ) from None
    return tuple(networks)


def in_networks(address, networks):
    """True when ``address`` (text or ``ipaddress`` object) is in one of
    ``networks``; IPv4-mapped IPv6 addresses count as their IPv4 address."""
    if isinstance(address, str):
        address = as_address(address)
    if address is None:
        return False
    if address.version == 6 and address.ipv4_mapped:
        address = address.ipv4_mapped
    return any(
        address.version == network.version and address in network
        for network in networks
    )


def embedded_ipv4(address):
    """The IPv4 address an IPv6 address carries (mapped, 6to4, Teredo, NAT64
    or IPv4-compatible), else ``None``: these reach the IPv4 host."""
    if address.version != 6:
        return None
    if address.ipv4_mapped:
        return address.ipv4_mapped
    if address.sixtofour:
        return address.sixtofour
    if address.teredo:
        return address.teredo[1]
    if address in NAT64_PREFIX or (address in IPV4_COMPATIBLE and int(address) > 1):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def address_problem(address):
    """Why Odoo must not connect to ``address``, or ``None`` when it is a
    public address.

    :param address: text or an ``ipaddress`` object
    :returns: e.g. ``"a loopback address"``; unreadable text is refused too
    """
    if isinstance(address, str):
        address = as_address(address)
    if address is None:
        return "not an IP address"
    embedded = embedded_ipv4(address)
    if embedded is not None:
        problem = address_problem(embedded)
        if problem:
            return problem
    checks = (
        (address in METADATA_ADDRESSES, "a cloud metadata address"),
        (address.is_unspecified, "an unspecified address"),
        (address.is_loopback, "a loopback address"),
        (address.is_link_local, "a link-local address"),
        (address.is_multicast, "a multicast address"),
        (
            address.version == 4 and address in SHARED_ADDRESS_SPACE,
            "a shared (carrier-grade NAT) address",
        ),
        (address.is_private, "a private address"),
        (address.is_reserved, "a reserved address"),
        (not address.is_global, "not a public address"),
    )
    return next((reason for failed, reason in checks if failed), None)


def secret_in_request(secrets, url="", headers=None, params=None, auth=None, body=None):
    """True when one of ``secrets`` appears in what a request would send: URL
    (also percent-decoded), query parameters, header values, basic-auth
    credentials or body (also form-decoded)."""
    texts = [url, unquote(url or "")]
    texts.extend(str(value) for value in (headers or {}).values())
    if isinstance(params, dict):
        texts.extend(f"{key}={value}" for key, value in params.items())
    elif params:
        texts.append(str(params))
    if auth and isinstance(auth, (tuple, list)):
        texts.extend(str(part) for part in auth)
    if isinstance(body, (bytes, bytearray)):
        body = bytes(body).decode("utf-8", errors="replace")
    if isinstance(body, dict):
        texts.extend(f"{key}={value}" for key, value in body.items())
    elif body:
        texts.extend((str(body), unquote_plus(str(body))))
    candidates = [s for s in secrets if s and len(s) >= MIN_SECRET_SCAN]
    return any(secret in text for text in texts if text for secret in candidates)


@dataclass(frozen=True)
class DestinationPolicy:
    """What one backend's requests may reach.

    :ivar provider_label: the provider's name, for messages
    :ivar provider_hosts: patterns of the provider's own hosts; empty when
        the provider is a system of the customer's choosing
    :ivar allowed_hosts: ``HostEntry`` allowed by the server configuration
    :ivar allowed_networks: networks allowed by the server configuration
    :ivar require_https: refuse plain http (production backends)
    :ivar secrets_to_provider_only: with no provider hosts, refuse a request
        that carries a stored secret (the client passes its secrets)
    """

    provider_label: str = ""
    provider_hosts: tuple = ()
    allowed_hosts: tuple = ()
    allowed_networks: tuple = ()
    require_https: bool = False
    secrets_to_provider_only: bool = False

    @property
    def scans_for_secrets(self):
        """Whether requests must be searched for stored secrets (a provider
        without hosts of its own, whose secrets must not travel)."""
        return self.secrets_to_provider_only and not self.provider_hosts

    def host_allowed_by_server(self, host, port):
        return any(entry.matches(host, port) for entry in self.allowed_hosts)

    def is_provider_host(self, host):
        return any(host_matches(host, pattern) for pattern in self.provider_hosts)

    def check_url(self, url, carries_secret=False):
        """Refuse a URL before anything is sent (no DNS lookup here).

        :param carries_secret: the request would carry a stored secret
        :returns: ``(host, port)``
        :raises OutboundRefused: with what to change
        """
        parts = urlsplit(url or "")
        scheme = parts.scheme.lower()
        try:
            host, port = parts.hostname, parts.port
        except ValueError:
            host = port = None
        shown = f"{scheme}://{parts.netloc.rpartition('@')[2]}" if scheme else "''"
        if scheme not in DEFAULT_PORTS or not host:
            raise OutboundRefused(
                f"{shown[:120]} is not an http(s) URL with a host: correct the URL."
            )
        port = port or DEFAULT_PORTS[scheme]
        host = normalize_host(host)
        if self.require_https and scheme != "https":
            raise OutboundRefused(
                f"{shown} is not https: a production backend sends nothing in "
                "clear. Use the https:// address."
            )
        by_server = self.host_allowed_by_server(host, port)
        if self.provider_hosts and not (self.is_provider_host(host) or by_server):
            raise OutboundRefused(
                f"{host} is not a host of {self.provider_label or 'the provider'} "
                f"({', '.join(self.provider_hosts)}): the backend's credentials "
                "are sent nowhere else. Correct the URL; for another host (a "
                f"local stand-in), {HOW_TO_ALLOW}.",
                suggested_action="Correct the URL on the backend.",
            )
        if (
            not self.provider_hosts
            and carries_secret
            and self.secrets_to_provider_only
            and not by_server
        ):
            raise OutboundRefused(
                f"The request to {host} would carry one of the backend's stored "
                "secrets, which go only to their provider's hosts: nothing was "
                "sent.",
            )
        address = as_address(host)
        if address is not None:
            self.check_address(host, port, address)
        return host, port

    def check_address(self, host, port, address):
        """Refuse connecting to ``address`` (what ``host`` resolved to).

        :raises OutboundRefused: a non-public address the configuration does
            not allow, with what to change
        """
        if isinstance(address, str):
            address = as_address(address)
        problem = address_problem(address)
        if problem is None:
            return
        if in_networks(address, self.allowed_networks):
            return
        if problem != "a cloud metadata address" and self.host_allowed_by_server(
            normalize_host(host), port
        ):
            return
        where = host if normalize_host(host) == str(address) else f"{host} ({address})"
        raise OutboundRefused(
            f"{where} is {problem}: Odoo does not send requests to loopback, "
            "private, link-local, shared, multicast or cloud metadata addresses. "
            f"Use the system's public https address; if it really lives on "
            f"this network, {HOW_TO_ALLOW}.",
            suggested_action="Correct the URL on the backend.",
        )
