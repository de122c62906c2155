"""Outbound Message parsing, its defences, and the exact answers we send back."""

from pathlib import Path
from xml.etree import ElementTree

import pytest

from qtc_salesforce.lib import outbound_message
from qtc_salesforce.lib.outbound_message import (
    OutboundMessageError,
    ack_response,
    parse_notifications,
    soap_fault,
)

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
REAL_MESSAGE = (FIXTURES / "outbound_two_opportunities.xml").read_bytes()

ENVELOPE_HEAD = (
    '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"'
    ' xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body>'
)
ENVELOPE_TAIL = "</soapenv:Body></soapenv:Envelope>"
CALL_HEAD = (
    '<notifications xmlns="http://soap.sforce.com/2005/09/outbound">'
    "<OrganizationId>00D5e000000KQ2eEAG</OrganizationId>"
    "<ActionId>04k5e000000CaRkAAK</ActionId>"
    "<SessionId>00D5e000000KQ2e!AQ4AQFakeSessionValue</SessionId>"
    "<EnterpriseUrl>https://acme.my.salesforce.com/services/Soap/c/62.0</EnterpriseUrl>"
    "<PartnerUrl>https://acme.my.salesforce.com/services/Soap/u/62.0</PartnerUrl>"
)
NOTIFICATION = (
    "<Notification><Id>04l5e00000Gx7QzAAJ</Id>"
    '<sObject xsi:type="sf:Account" xmlns:sf="urn:sobject.enterprise.soap.sforce.com">'
    "<sf:Id>0015e00000ZkM3hAAF</sf:Id><sf:Name>Acme</sf:Name></sObject>"
    "</Notification>"
)


def message(call_body=NOTIFICATION, head=CALL_HEAD):
    return (
        ENVELOPE_HEAD + head + call_body + "</notifications>" + ENVELOPE_TAIL
    ).encode()


def error_of(body, **kwargs):
    with pytest.raises(OutboundMessageError) as caught:
        parse_notifications(body, **kwargs)
    return str(caught.value)


# ------------------------------------------------------------------ happy path


def test_real_message_header_fields():
    parsed = parse_notifications(REAL_MESSAGE)
    assert parsed.organization_id == "00D5e000000KQ2eEAG"
    assert parsed.action_id == "04k5e000000CaRkAAK"
    assert parsed.session_id is None
    assert parsed.enterprise_url == (
        "https://acme.my.salesforce.com/services/Soap/c/62.0/00D5e000000KQ2e"
    )
    assert parsed.partner_url == (
        "https://acme.my.salesforce.com/services/Soap/u/62.0/00D5e000000KQ2e"
    )


def test_real_message_notifications_in_order_with_typed_sobjects():
    parsed = parse_notifications(REAL_MESSAGE)
    assert [n.id for n in parsed.notifications] == [
        "04l5e00000Gx7QzAAJ",
        "04l5e00000Gx7R0AAJ",
    ]
    first, second = parsed.notifications
    assert first.sobject.type == "Opportunity"
    assert first.sobject.fields == {
        "Id": "0065e00000AbCdEAAV",
        "AccountId": "0015e00000ZkM3hAAF",
        "Amount": "48000.0",
        "CloseDate": "2026-03-31",
        "CurrencyIsoCode": "EUR",
        "IsWon": "true",
        "Name": "Acme & Co - ERP rollout",
        "StageName": "Closed Won",
        "SystemModstamp": "2026-03-31T14:02:11.000Z",
    }
    assert second.sobject.fields["Description"] is None
    assert "Description" not in first.sobject.fields
    assert second.sobject.fields["Amount"] == "12500.5"


def test_as_record_gives_the_rest_shape():
    parsed = parse_notifications(REAL_MESSAGE)
    record = parsed.notifications[1].sobject.as_record()
    assert record["attributes"] == {"type": "Opportunity"}
    assert record["Id"] == "0065e00000AbCdFAAV"
    assert record["Description"] is None


def test_expected_organization_accepted_in_15_or_18_characters():
    for expected in ("00D5e000000KQ2eEAG", "00D5e000000KQ2e"):
        parsed = parse_notifications(REAL_MESSAGE, organization_id=expected)
        assert parsed.organization_id == "00D5e000000KQ2eEAG"


def test_message_from_another_org_refused():
    assert error_of(REAL_MESSAGE, organization_id="00D5e000000XXXXEAG") == (
        "OrganizationId 00D5e000000KQ2eEAG is not the org this backend is connected to"
    )


def test_session_id_kept_but_not_in_repr():
    parsed = parse_notifications(message())
    assert parsed.session_id == "00D5e000000KQ2e!AQ4AQFakeSessionValue"
    assert "FakeSessionValue" not in repr(parsed)


def test_empty_element_is_empty_string_not_none():
    body = NOTIFICATION.replace("<sf:Name>Acme</sf:Name>", "<sf:Phone/>")
    fields = parse_notifications(message(body)).notifications[0].sobject.fields
    assert fields == {"Id": "0015e00000ZkM3hAAF", "Phone": ""}


def test_byte_order_mark_and_other_prefixes_accepted():
    body = message().replace(b"sf:", b"ens:").replace(b"xmlns:sf=", b"xmlns:ens=")
    parsed = parse_notifications(b"\xef\xbb\xbf" + body)
    assert parsed.notifications[0].sobject.type == "Account"
    assert parsed.notifications[0].sobject.fields["Name"] == "Acme"


def test_fifteen_character_ids_accepted():
    body = NOTIFICATION.replace("0015e00000ZkM3hAAF", "0015e00000ZkM3h")
    parsed = parse_notifications(message(body))
    assert parsed.notifications[0].sobject.fields["Id"] == "0015e00000ZkM3h"


def test_unicode_values_survive():
    body = NOTIFICATION.replace("Acme", "Société Générale \u2013 東京")
    parsed = parse_notifications(message(body))
    assert (
        parsed.notifications[0].sobject.fields["Name"] == "Société Générale \u2013 東京"
    )


# ------------------------------------------------------------ malformed input


def test_truncated_xml_is_reported_with_position():
    text = error_of(REAL_MESSAGE[:300])
    assert text.startswith("malformed XML at line")


def test_not_xml_at_all():
    assert error_of(b"grant_type=password").startswith("malformed XML at line 1")


def test_empty_and_non_bytes_bodies():
    assert error_of(b"") == "empty body"
    assert error_of(REAL_MESSAGE.decode()) == "body must be bytes, got str"


def test_non_utf8_body_refused():
    text = message(NOTIFICATION.replace("Acme", "Société")).decode()
    assert "body is not UTF-8" in error_of(text.encode("latin-1"))


def test_utf16_body_refused():
    body = REAL_MESSAGE.decode().encode("utf-16")
    assert "not UTF-8" in error_of(body)


def test_oversized_body_refused_before_parsing():
    text = error_of(REAL_MESSAGE, max_bytes=100)
    assert text == f"body of {len(REAL_MESSAGE)} bytes exceeds the 100 byte limit"


def test_default_size_cap_is_four_mebibytes():
    body = message() + b" " * outbound_message.MAX_BODY_BYTES
    assert "byte limit" in error_of(body)


def test_missing_organization_id():
    head = CALL_HEAD.replace("<OrganizationId>00D5e000000KQ2eEAG</OrganizationId>", "")
    assert error_of(message(head=head)) == "notifications: missing OrganizationId"


def test_invalid_ids_rejected():
    head = CALL_HEAD.replace("04k5e000000CaRkAAK", "04k5e' OR 1=1")
    assert 'ActionId "04k5e\' OR 1=1" is not a 15 or 18 character' in error_of(
        message(head=head)
    )
    body = NOTIFICATION.replace("<Id>04l5e00000Gx7QzAAJ</Id>", "<Id>short</Id>")
    assert error_of(message(body)).startswith("Notification 1: Id 'short'")


def test_notification_without_sobject_or_type():
    body = "<Notification><Id>04l5e00000Gx7QzAAJ</Id></Notification>"
    assert error_of(message(body)) == "Notification 1: missing sObject"
    untyped = NOTIFICATION.replace(' xsi:type="sf:Account"', "")
    assert error_of(message(untyped)) == "Notification 1: sObject has no xsi:type"


def test_no_notification_at_all():
    assert error_of(message("")) == "notifications carries no Notification element"


def test_more_than_one_hundred_notifications():
    many = "".join(
        NOTIFICATION.replace("04l5e00000Gx7QzAAJ", f"04l5e00000Gx{n:04d}AJ")
        for n in range(101)
    )
    assert error_of(message(many)) == (
        "101 notifications in one message, Salesforce sends at most 100"
    )


def test_one_hundred_notifications_accepted():
    many = "".join(
        NOTIFICATION.replace("04l5e00000Gx7QzAAJ", f"04l5e00000Gx{n:04d}AJ")
        for n in range(100)
    )
    assert len(parse_notifications(message(many)).notifications) == 100


def test_duplicate_notification_id():
    assert error_of(message(NOTIFICATION * 2)) == (
        "Notification 2: id 04l5e00000Gx7QzAAJ appears twice"
    )


def test_duplicate_field():
    body = NOTIFICATION.replace(
        "<sf:Name>Acme</sf:Name>", "<sf:Name>Acme</sf:Name><sf:Name>B</sf:Name>"
    )
    assert error_of(message(body)) == "Notification 1: field Name appears twice"


def test_nested_field_rejected():
    body = NOTIFICATION.replace(
        "<sf:Name>Acme</sf:Name>", "<sf:Owner><sf:Name>x</sf:Name></sf:Owner>"
    )
    assert "field Owner has child elements" in error_of(message(body))


def test_invalid_sobject_id_in_fields():
    body = NOTIFICATION.replace("<sf:Id>0015e00000ZkM3hAAF</sf:Id>", "<sf:Id>x</sf:Id>")
    assert (
        error_of(message(body))
        == "Notification 1: sObject Id 'x' is not a Salesforce id"
    )


def test_excessive_nesting_rejected():
    deep = "<a>" * 20 + "</a>" * 20
    body = message(NOTIFICATION.replace("<sf:Name>Acme</sf:Name>", deep))
    assert error_of(body) == "elements nested deeper than 16 levels"


# ---------------------------------------------------------------- namespaces


def test_wrong_notifications_namespace():
    body = message().replace(
        b"http://soap.sforce.com/2005/09/outbound", b"http://example.com/outbound"
    )
    assert error_of(body) == (
        "Body holds notifications (namespace http://example.com/outbound); "
        "expected notifications in namespace http://soap.sforce.com/2005/09/outbound"
    )


def test_soap_12_envelope_rejected():
    body = message().replace(
        b"http://schemas.xmlsoap.org/soap/envelope/",
        b"http://www.w3.org/2003/05/soap-envelope",
    )
    assert error_of(body) == (
        "root element is Envelope (namespace http://www.w3.org/2003/05/soap-envelope)"
        ", expected a SOAP 1.1 Envelope in namespace "
        "http://schemas.xmlsoap.org/soap/envelope/"
    )


def test_root_without_namespace():
    assert error_of(b"<Envelope/>") == (
        "root element is Envelope (no namespace), expected a SOAP 1.1 Envelope in "
        "namespace http://schemas.xmlsoap.org/soap/envelope/"
    )


def test_envelope_without_body():
    body = (
        ENVELOPE_HEAD.replace("<soapenv:Body>", "") + "</soapenv:Envelope>"
    ).encode()
    assert error_of(body) == "Envelope: missing Body"


def test_sobject_type_prefix_bound_to_other_namespace():
    body = NOTIFICATION.replace(
        'xmlns:sf="urn:sobject.enterprise.soap.sforce.com"',
        'xmlns:sf="urn:sobject.enterprise.soap.sforce.com" xmlns:t="urn:other"',
    ).replace('xsi:type="sf:Account"', 'xsi:type="t:Account"')
    assert error_of(message(body)) == (
        "Notification 1: sObject type 't:Account' is not in namespace "
        "urn:sobject.enterprise.soap.sforce.com"
    )


def test_sobject_type_prefix_resolved_in_inner_scope():
    # The same prefix rebound on an inner element must not leak out of it.
    body = (
        '<Notification xmlns:sf="urn:other"><Id>04l5e00000Gx7QzAAJ</Id>'
        '<sObject xsi:type="sf:Account" '
        'xmlns:sf="urn:sobject.enterprise.soap.sforce.com">'
        "<sf:Id>0015e00000ZkM3hAAF</sf:Id></sObject></Notification>"
        '<Notification xmlns:sf="urn:other"><Id>04l5e00000Gx7R0AAJ</Id>'
        '<sObject xsi:type="sf:Account">'
        '<x:Id xmlns:x="urn:sobject.enterprise.soap.sforce.com">0015e00000ZkM3hAAF'
        "</x:Id></sObject></Notification>"
    )
    assert error_of(message(body)).startswith(
        "Notification 2: sObject type 'sf:Account' is not in namespace"
    )


def test_field_in_wrong_namespace():
    body = NOTIFICATION.replace("<sf:Name>Acme</sf:Name>", "<Name>Acme</Name>")
    assert error_of(message(body)) == (
        "Notification 1: field Name (namespace http://soap.sforce.com/2005/09/"
        "outbound) is not in namespace urn:sobject.enterprise.soap.sforce.com"
    )


# ------------------------------------------------------------------ attacks

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
]>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/">
<soapenv:Body>&lol3;</soapenv:Body></soapenv:Envelope>"""

XXE = b"""<?xml version="1.0"?>
<!DOCTYPE foo [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/">
<soapenv:Body>&xxe;</soapenv:Body></soapenv:Envelope>"""

DTD_REFUSED = (
    "DOCTYPE and ENTITY declarations are not accepted: Outbound Messages never "
    "carry them and they enable entity-expansion attacks"
)


@pytest.mark.parametrize(
    "body",
    [
        BILLION_LAUGHS,
        XXE,
        XXE.replace(b"DOCTYPE", b"doctype"),
        XXE.replace(b"<!DOCTYPE", b"<! DOCTYPE"),
        b'<!ENTITY x "y"><a/>',
        REAL_MESSAGE.replace(b"<soapenv:Envelope", b"<!DOCTYPE x><soapenv:Envelope"),
    ],
)
def test_dtd_and_entities_rejected_before_parsing(body, monkeypatch):
    def parser_must_not_run(*args, **kwargs):
        raise AssertionError("the XML parser ran on a refused body")

    monkeypatch.setattr(ElementTree, "XMLPullParser", parser_must_not_run)
    assert error_of(body) == DTD_REFUSED


def test_undeclared_entity_reference_is_malformed():
    body = message(NOTIFICATION.replace("Acme", "&lol;"))
    assert error_of(body).startswith("malformed XML at line 1")


# ------------------------------------------------------------------ answers


def test_ack_true_exact_bytes():
    assert ack_response(True) == (
        b'<?xml version="1.0" encoding="UTF-8"?>\n'
        b'<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/">'
        b"<soapenv:Body>"
        b'<notificationsResponse xmlns="http://soap.sforce.com/2005/09/outbound">'
        b"<Ack>true</Ack>"
        b"</notificationsResponse>"
        b"</soapenv:Body>"
        b"</soapenv:Envelope>"
    )


def test_ack_false_differs_only_in_value():
    assert ack_response(False) == ack_response(True).replace(
        b"<Ack>true</Ack>", b"<Ack>false</Ack>"
    )


def test_ack_response_parses_as_the_documented_schema():
    root = ElementTree.fromstring(  # noqa: S314 - our own output
        ack_response(True)
    )
    ack = root.find(
        "{http://schemas.xmlsoap.org/soap/envelope/}Body/"
        "{http://soap.sforce.com/2005/09/outbound}notificationsResponse/"
        "{http://soap.sforce.com/2005/09/outbound}Ack"
    )
    assert ack.text == "true"


@pytest.mark.parametrize("value", ["true", 1, None])
def test_ack_requires_a_bool(value):
    with pytest.raises(TypeError):
        ack_response(value)


def test_fault_exact_bytes_and_escaping():
    assert soap_fault('bad <input> & "quotes"') == (
        b'<?xml version="1.0" encoding="UTF-8"?>\n'
        b'<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/">'
        b"<soapenv:Body><soapenv:Fault>"
        b"<faultcode>soapenv:Client</faultcode>"
        b'<faultstring>bad &lt;input&gt; &amp; "quotes"</faultstring>'
        b"</soapenv:Fault></soapenv:Body></soapenv:Envelope>"
    )


def test_fault_server_code_and_roundtrip():
    body = soap_fault("database busy, retry </faultstring>", code="Server")
    root = ElementTree.fromstring(  # noqa: S314 - our own output
        body
    )
    fault = root.find(
        "{http://schemas.xmlsoap.org/soap/envelope/}Body/"
        "{http://schemas.xmlsoap.org/soap/envelope/}Fault"
    )
    assert fault.find("faultcode").text == "soapenv:Server"
    assert fault.find("faultstring").text == "database busy, retry </faultstring>"


def test_fault_drops_characters_xml_cannot_carry_and_caps_length():
    body = soap_fault("a\x00b\x1bc" + "x" * 5000)
    text = (
        ElementTree.fromstring(  # noqa: S314 - our own output
            body
        )
        .find(".//faultstring")
        .text
    )
    assert text == "abc" + "x" * 997


def test_fault_unknown_code():
    with pytest.raises(ValueError, match="Client or Server"):
        soap_fault("x", code="Receiver")
