"""Salesforce Outbound Messages: parse the SOAP notification, write the answer.

An Outbound Message is a SOAP 1.1 request Salesforce posts when a workflow or
flow fires. Its body holds one ``notifications`` element (namespace
``http://soap.sforce.com/2005/09/outbound``) with the sending org, the action,
an optional session id, two callback URLs and 1 to 100 ``Notification``
elements. Each notification carries its own id (Salesforce re-sends the same
notification id until it is acknowledged, so it is the deduplication key) and
one ``sObject`` typed ``xsi:type="sf:Opportunity"`` whose children are the
fields chosen in Setup, in namespace ``urn:sobject.enterprise.soap.sforce.com``.

Salesforce keeps re-delivering a message until the listener answers with
``notificationsResponse/Ack = true``; a SOAP Fault (or ``Ack = false``) means
"try again later". ``ack_response`` and ``soap_fault`` write those answers.

The body comes from the internet, so the parser defends itself before
``xml.etree`` sees a byte: the size is capped, the text must be UTF-8 (what
Salesforce sends), and any DOCTYPE or ENTITY declaration is refused. Without a
DTD there is no entity to expand (billion laughs) and no external entity to
fetch (XXE); nesting depth is bounded as well.

The session id, when the message carries one, is a live Salesforce session:
it is kept out of ``repr`` so it does not end up in a log line.
"""

import re
from dataclasses import dataclass, field
from xml.etree import ElementTree
from xml.sax.saxutils import escape

SOAP_ENV_NS = "http://schemas.xmlsoap.org/soap/envelope/"
OUTBOUND_NS = "http://soap.sforce.com/2005/09/outbound"
SOBJECT_NS = "urn:sobject.enterprise.soap.sforce.com"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"

# 100 notifications of a few dozen fields fit easily; long text areas are the
# only large values and 4 MiB leaves room for them while bounding memory.
MAX_BODY_BYTES = 4 * 1024 * 1024
# Salesforce's WSDL allows at most 100 Notification elements per message.
MAX_NOTIFICATIONS = 100
# A real message is 6 levels deep; anything much deeper is not Salesforce.
MAX_DEPTH = 16
FAULT_MESSAGE_MAX_CHARS = 1000

_SALESFORCE_ID_RE = re.compile(r"^[A-Za-z0-9]{15}(?:[A-Za-z0-9]{3})?$")
_SOBJECT_TYPE_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,79}$")
_FORBIDDEN_MARKUP_RE = re.compile(r"<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE)
# Characters XML 1.0 cannot carry at all, not even escaped.
_XML_INVALID_CHARS_RE = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]"
)


class OutboundMessageError(ValueError):
    """The body is not a well-formed, acceptable Outbound Message.

    The message says what is wrong in terms an administrator can act on; it
    never quotes more than a short excerpt of the body.
    """


@dataclass(frozen=True)
class SObject:
    """One record as the Outbound Message carries it.

    :ivar type: the sObject API name from ``xsi:type`` (``Opportunity``)
    :ivar fields: field API name -> text value; ``None`` where the field was
        sent as ``xsi:nil="true"``, ``""`` for an empty element. Values stay
        strings: Outbound Messages carry no JSON types, the mapper converts.
    """

    type: str
    fields: dict

    def as_record(self):
        """The record in the REST API's shape (``attributes.type`` + fields).

        Lets the mapper and ``payload_hash`` treat both channels alike.
        """
        return {"attributes": {"type": self.type}, **self.fields}


@dataclass(frozen=True)
class Notification:
    """One notification: its own id (the redelivery key) and its record."""

    id: str
    sobject: SObject


@dataclass(frozen=True)
class OutboundMessage:
    """The parsed ``notifications`` call.

    :ivar session_id: ``None`` unless the Outbound Message is set to send one;
        hidden from ``repr`` because it is a usable Salesforce session
    """

    organization_id: str
    action_id: str
    session_id: str | None = field(repr=False)
    enterprise_url: str
    partner_url: str
    notifications: tuple


def parse_notifications(body, max_bytes=MAX_BODY_BYTES, organization_id=None):
    """Parse an Outbound Message SOAP envelope.

    :param body: the raw HTTP request body (``bytes``)
    :param max_bytes: refuse larger bodies before parsing anything
    :param organization_id: the org this backend is connected to (15 or 18
        characters); a message from another org is refused. Outbound
        Messages are not signed, so this check belongs with the listener's
        other defences (secret URL, TLS client certificate, IP allow-list).
    :returns: an ``OutboundMessage`` with every notification, in body order
    :raises OutboundMessageError: for an oversized, non-UTF-8, DTD-carrying or
        malformed body, a wrong namespace, a missing or invalid element, more
        than 100 notifications, a notification id seen twice, or another org
    """
    text = _decode_safely(body, max_bytes)
    envelope, scopes = _parse_xml(text)

    if envelope.tag != f"{{{SOAP_ENV_NS}}}Envelope":
        raise OutboundMessageError(
            f"root element is {_describe(envelope.tag)}, expected a SOAP 1.1 "
            f"Envelope in namespace {SOAP_ENV_NS}"
        )
    body_element = _only_child(envelope, f"{{{SOAP_ENV_NS}}}Body", "Envelope")
    call = _single_notifications(body_element)

    sender_org = _required_id(call, "OrganizationId")
    # The 18-character form only adds a case-checksum to the 15 characters.
    if organization_id and sender_org[:15] != organization_id[:15]:
        raise OutboundMessageError(
            f"OrganizationId {sender_org} is not the org this backend is connected to"
        )
    action_id = _required_id(call, "ActionId")
    session_element = _optional_child(call, "SessionId", "notifications")
    session_id = None
    if session_element is not None and not _is_nil(session_element):
        session_id = (session_element.text or "").strip() or None
    enterprise_url = _required_text(call, "EnterpriseUrl")
    partner_url = _required_text(call, "PartnerUrl")

    notification_elements = call.findall(f"{{{OUTBOUND_NS}}}Notification")
    if not notification_elements:
        raise OutboundMessageError("notifications carries no Notification element")
    if len(notification_elements) > MAX_NOTIFICATIONS:
        raise OutboundMessageError(
            f"{len(notification_elements)} notifications in one message, "
            f"Salesforce sends at most {MAX_NOTIFICATIONS}"
        )
    notifications = []
    seen_ids = set()
    for position, element in enumerate(notification_elements, start=1):
        notification = _parse_notification(element, position, scopes)
        if notification.id in seen_ids:
            raise OutboundMessageError(
                f"Notification {position}: id {notification.id} appears twice"
            )
        seen_ids.add(notification.id)
        notifications.append(notification)

    return OutboundMessage(
        organization_id=sender_org,
        action_id=action_id,
        session_id=session_id,
        enterprise_url=enterprise_url,
        partner_url=partner_url,
        notifications=tuple(notifications),
    )


def ack_response(ack):
    """The ``notificationsResponse`` envelope Salesforce expects back.

    ``Ack`` true tells Salesforce the whole message was received and must not
    be re-sent; false asks it to retry later.

    :param ack: a real ``bool`` (a truthy string would hide a caller's bug)
    :returns: the UTF-8 response body
    :raises TypeError: when ``ack`` is not a bool
    """
    if not isinstance(ack, bool):
        raise TypeError(f"ack must be a bool, got {type(ack).__name__}")
    value = "true" if ack else "false"
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<soapenv:Envelope xmlns:soapenv="{SOAP_ENV_NS}">'
        "<soapenv:Body>"
        f'<notificationsResponse xmlns="{OUTBOUND_NS}">'
        f"<Ack>{value}</Ack>"
        "</notificationsResponse>"
        "</soapenv:Body>"
        "</soapenv:Envelope>"
    ).encode()


def soap_fault(message, code="Client"):
    """A SOAP 1.1 Fault envelope, for a message we refuse or cannot take now.

    Use ``Client`` when the request itself is wrong (Salesforce's retries will
    not fix it, but it will retry and the failure shows in its queue) and
    ``Server`` for a failure on our side.

    :param message: human-readable reason; XML-escaped, characters XML cannot
        carry are dropped, and it is cut at 1000 characters
    :param code: ``Client`` or ``Server``
    :returns: the UTF-8 response body (send it with HTTP status 500)
    :raises ValueError: for any other code
    """
    if code not in ("Client", "Server"):
        raise ValueError(f"fault code must be Client or Server, not {code!r}")
    text = _XML_INVALID_CHARS_RE.sub("", str(message))[:FAULT_MESSAGE_MAX_CHARS]
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<soapenv:Envelope xmlns:soapenv="{SOAP_ENV_NS}">'
        "<soapenv:Body>"
        "<soapenv:Fault>"
        f"<faultcode>soapenv:{code}</faultcode>"
        f"<faultstring>{escape(text)}</faultstring>"
        "</soapenv:Fault>"
        "</soapenv:Body>"
        "</soapenv:Envelope>"
    ).encode()


# --------------------------------------------------------------------- parsing


def _decode_safely(body, max_bytes):
    if not isinstance(body, bytes | bytearray):
        raise OutboundMessageError(f"body must be bytes, got {type(body).__name__}")
    if not body:
        raise OutboundMessageError("empty body")
    if len(body) > max_bytes:
        raise OutboundMessageError(
            f"body of {len(body)} bytes exceeds the {max_bytes} byte limit"
        )
    try:
        # utf-8-sig drops a byte order mark; anything not UTF-8 is refused
        # rather than guessed, so the scan below sees exactly what expat sees.
        text = bytes(body).decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise OutboundMessageError(
            f"body is not UTF-8 (invalid byte at offset {error.start})"
        ) from None
    if _FORBIDDEN_MARKUP_RE.search(text):
        raise OutboundMessageError(
            "DOCTYPE and ENTITY declarations are not accepted: Outbound "
            "Messages never carry them and they enable entity-expansion attacks"
        )
    return text


def _parse_xml(text):
    """Parse ``text``; return the root and the namespace scope of each element.

    ``xsi:type`` holds a prefixed name (``sf:Opportunity``) whose prefix only
    means something through the declarations in scope at that element, which
    ElementTree does not keep; the pull parser's ``start-ns`` events give them.
    """
    parser = ElementTree.XMLPullParser(events=("start-ns", "start", "end"))
    stack = [{"xml": "http://www.w3.org/XML/1998/namespace"}]
    pending = {}
    scopes = {}
    root = None
    try:
        parser.feed(text)
        parser.close()
        for event, payload in parser.read_events():
            if event == "start-ns":
                prefix, uri = payload
                pending[prefix] = uri
            elif event == "start":
                scope = {**stack[-1], **pending} if pending else stack[-1]
                pending = {}
                stack.append(scope)
                if len(stack) - 1 > MAX_DEPTH:
                    raise OutboundMessageError(
                        f"elements nested deeper than {MAX_DEPTH} levels"
                    )
                scopes[payload] = scope
                if root is None:
                    root = payload
            else:
                stack.pop()
    except ElementTree.ParseError as error:
        line, column = error.position
        raise OutboundMessageError(
            f"malformed XML at line {line}, column {column}: {_short(error)}"
        ) from None
    if root is None:  # pragma: no cover - expat rejects a document without root
        raise OutboundMessageError("no root element")
    return root, scopes


def _single_notifications(body_element):
    children = list(body_element)
    expected = f"{{{OUTBOUND_NS}}}notifications"
    calls = [child for child in children if child.tag == expected]
    if len(calls) == 1 and len(children) == 1:
        return calls[0]
    if not calls:
        names = ", ".join(_describe(child.tag) for child in children) or "nothing"
        raise OutboundMessageError(
            f"Body holds {names}; expected notifications in namespace {OUTBOUND_NS}"
        )
    raise OutboundMessageError("Body must hold exactly one notifications element")


def _parse_notification(element, position, scopes):
    where = f"Notification {position}"
    notification_id = _required_id(element, "Id", where)
    sobject_element = _only_child(element, f"{{{OUTBOUND_NS}}}sObject", where)
    sobject_type = _sobject_type(sobject_element, scopes[sobject_element], where)
    fields = {}
    for child in sobject_element:
        namespace, name = _split(child.tag)
        if namespace != SOBJECT_NS:
            raise OutboundMessageError(
                f"{where}: field {_describe(child.tag)} is not in namespace "
                f"{SOBJECT_NS}"
            )
        if name in fields:
            raise OutboundMessageError(f"{where}: field {name} appears twice")
        if len(child):
            raise OutboundMessageError(
                f"{where}: field {name} has child elements; Outbound Messages "
                "carry flat field values only"
            )
        fields[name] = None if _is_nil(child) else (child.text or "")
    record_id = fields.get("Id")
    if record_id is not None and not _SALESFORCE_ID_RE.match(record_id):
        raise OutboundMessageError(
            f"{where}: sObject Id {record_id[:40]!r} is not a Salesforce id"
        )
    return Notification(
        id=notification_id, sobject=SObject(type=sobject_type, fields=fields)
    )


def _sobject_type(element, scope, where):
    declared = element.get(f"{{{XSI_NS}}}type")
    if not declared:
        raise OutboundMessageError(f"{where}: sObject has no xsi:type")
    prefix, _, local = declared.rpartition(":")
    # An unprefixed QName takes the default namespace, as in XML Schema.
    namespace = scope.get(prefix)
    if namespace != SOBJECT_NS:
        raise OutboundMessageError(
            f"{where}: sObject type {declared[:80]!r} is not in namespace {SOBJECT_NS}"
        )
    if not _SOBJECT_TYPE_RE.match(local):
        raise OutboundMessageError(
            f"{where}: sObject type {local[:80]!r} is not an sObject name"
        )
    return local


def _only_child(parent, tag, where):
    found = parent.findall(tag)
    name = _split(tag)[1]
    if not found:
        raise OutboundMessageError(f"{where}: missing {name}")
    if len(found) > 1:
        raise OutboundMessageError(f"{where}: {name} appears {len(found)} times")
    return found[0]


def _optional_child(parent, name, where):
    found = parent.findall(f"{{{OUTBOUND_NS}}}{name}")
    if len(found) > 1:
        raise OutboundMessageError(f"{where}: {name} appears {len(found)} times")
    return found[0] if found else None


def _required_text(parent, name, where="notifications"):
    element = _only_child(parent, f"{{{OUTBOUND_NS}}}{name}", where)
    value = (element.text or "").strip()
    if _is_nil(element) or not value:
        raise OutboundMessageError(f"{where}: {name} is empty")
    return value


def _required_id(parent, name, where="notifications"):
    value = _required_text(parent, name, where)
    if not _SALESFORCE_ID_RE.match(value):
        raise OutboundMessageError(
            f"{where}: {name} {value[:40]!r} is not a 15 or 18 character Salesforce id"
        )
    return value


def _is_nil(element):
    return element.get(f"{{{XSI_NS}}}nil") in ("true", "1")


def _split(tag):
    if tag.startswith("{"):
        namespace, _, name = tag[1:].partition("}")
        return namespace, name
    return None, tag


def _describe(tag):
    namespace, name = _split(tag)
    return f"{name} (namespace {namespace})" if namespace else f"{name} (no namespace)"


def _short(error):
    # expat messages read "not well-formed (invalid token): line 1, column 5";
    # the position is reported separately, keep only the reason.
    return str(error).split(":", 1)[0]
