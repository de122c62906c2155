"""Mapping Salesforce records to canonical objects, validation, payload hash."""

import copy
import dataclasses
import json
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from qtc_salesforce.lib.mapper import (
    ContactPerson,
    CustomerAccount,
    EngagementLine,
    MappingConfig,
    MappingError,
    ScheduleEntry,
    map_account,
    map_contact,
    map_engagement,
    payload_hash,
    validate_engagement,
)
from qtc_salesforce.lib.outbound_message import parse_notifications

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
PAGE1 = json.loads((FIXTURES / "opportunity_query_page1.json").read_text())
PAGE2 = json.loads((FIXTURES / "opportunity_query_page2.json").read_text())
ACME = PAGE1["records"][0]
GLOBEX = PAGE1["records"][1]
CONFIG = MappingConfig(tax_id_field="VAT_Number__c")
CURRENCIES = {"EUR", "USD"}
PRODUCTS = {"IMPL-MS", "CONS-HR", "SUPPORT-Y"}

ACME_ACCOUNT = CustomerAccount(
    external_id="0015e00000ZkM3hAAF",
    name="Acme & Co GmbH",
    billing_street="Hauptstrasse 1\nGebäude B",
    billing_city="Berlin",
    billing_zip="10115",
    billing_state_code="BE",
    billing_country_code="DE",
    phone="+49 30 1234567",
    website="https://acme.example.com",
    tax_id="DE123456789",
    currency_code="EUR",
    updated_at=datetime(2026, 3, 30, 9, tzinfo=UTC),
)


def mapping_problems(record, mapper=map_engagement, **kwargs):
    with pytest.raises(MappingError) as caught:
        mapper(record, **kwargs)
    return list(caught.value.problems)


# ------------------------------------------------------------------ accounts


def test_map_account_from_rest_record():
    record = {
        "attributes": {
            "type": "Account",
            "url": "/services/data/v62.0/sobjects/Account/x",
        },
        **{k: v for k, v in ACME["Account"].items() if k != "attributes"},
    }
    assert map_account(record, CONFIG) == ACME_ACCOUNT


def test_map_account_without_tax_field_configured():
    assert map_account(ACME["Account"]).tax_id is None


def test_account_blank_values_become_none_and_lastmodified_fallback():
    record = {
        "attributes": {"type": "Account"},
        "Id": "0015e00000ZkM3hAAF",
        "Name": "  Acme  ",
        "BillingCity": "   ",
        "Website": "",
        "LastModifiedDate": "2026-01-02T03:04:05.000Z",
    }
    account = map_account(record)
    assert account.name == "Acme"
    assert account.billing_city is None and account.website is None
    assert account.currency_code is None
    assert account.updated_at == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def test_default_currency_for_single_currency_orgs():
    config = MappingConfig(default_currency="CHF")
    record = {"attributes": {"type": "Account"}, "Id": "0015e00000ZkM3hAAF"}
    assert map_account(record, config).currency_code == "CHF"


def test_account_unreadable_values_all_reported():
    record = {
        "attributes": {"type": "Account"},
        "Id": "0015e' OR '1'='1",
        "Name": 42,
        "CurrencyIsoCode": "Euro",
        "SystemModstamp": "yesterday",
    }
    assert mapping_problems(record, map_account) == [
        "Account.Id: \"0015e' OR '1'='1\" is not a Salesforce id",
        "Account.Name: expected text, got int",
        "Account.CurrencyIsoCode: 'Euro' is not a three-letter ISO code",
        "Account.SystemModstamp: 'yesterday' is not a datetime",
    ]


def test_wrong_record_type_and_non_dict():
    assert mapping_problems(
        {"attributes": {"type": "Lead"}, "Id": "00Q5e00000AbCdE"}, map_account
    ) == ["Account: expected an sObject of type Account, got Lead"]
    assert mapping_problems(["x"], map_account) == [
        "Account: expected an sObject of type Account, got list",
        "Account.Id: missing",
    ]


# ------------------------------------------------------------------ contacts


def test_map_contact():
    contact = map_contact(
        {
            "attributes": {"type": "Contact"},
            "Id": "0035e00000Ct1AAAAZ",
            "AccountId": "0015e00000ZkM3hAAF",
            "FirstName": "Ada",
            "LastName": "Lovelace",
            "Email": "ada@acme.example.com",
            "Phone": None,
            "MobilePhone": "+49 170 000000",
            "Title": "CFO",
            "SystemModstamp": "2026-02-01T00:00:00.000+0000",
        }
    )
    assert contact == ContactPerson(
        external_id="0035e00000Ct1AAAAZ",
        account_external_id="0015e00000ZkM3hAAF",
        first_name="Ada",
        last_name="Lovelace",
        email="ada@acme.example.com",
        phone=None,
        mobile="+49 170 000000",
        title="CFO",
        updated_at=datetime(2026, 2, 1, tzinfo=UTC),
    )
    assert contact.name == "Ada Lovelace"
    assert dataclasses.replace(contact, first_name=None).name == "Lovelace"


def test_contact_requires_id():
    assert mapping_problems({"attributes": {"type": "Contact"}}, map_contact) == [
        "Contact.Id: missing"
    ]


# --------------------------------------------------------------- engagements


def test_map_engagement_real_record():
    engagement = map_engagement(ACME, CONFIG)
    assert engagement.external_id == "0065e00000AbCdEAAV"
    assert engagement.account_external_id == "0015e00000ZkM3hAAF"
    assert engagement.account == ACME_ACCOUNT
    assert engagement.name == "Acme & Co - ERP rollout"
    assert engagement.close_date == date(2026, 3, 31)
    assert engagement.currency_code == "EUR"
    assert engagement.stage == "Closed Won"
    assert engagement.amount == Decimal("48000.0")
    assert engagement.is_won is True
    assert engagement.description == "Phase 1 implementation"
    assert engagement.updated_at == datetime(2026, 3, 31, 14, 2, 11, tzinfo=UTC)
    assert engagement.lines_complete is True
    assert engagement.lines == (
        EngagementLine(
            external_id="00k5e00000Lm1AAAAZ",
            product_code="IMPL-MS",
            description="Implementation milestones",
            quantity=Decimal("3.0"),
            unit_price=Decimal("12000.0"),
            discount_percent=None,
            billing_kind="milestone",
            billing_type_raw="Milestone",
        ),
        EngagementLine(
            external_id="00k5e00000Lm1ABAAZ",
            product_code="CONS-HR",
            description="Consulting hours",
            quantity=Decimal("100.0"),
            unit_price=Decimal("150.0"),
            discount_percent=Decimal("20.0"),
            billing_kind="time",
            billing_type_raw="Time & Materials",
        ),
    )
    assert validate_engagement(engagement, CURRENCIES, PRODUCTS, True, CONFIG) == []


def test_empty_billing_type_defaults_to_fixed_and_decimals_exact():
    engagement = map_engagement(GLOBEX, CONFIG)
    (line,) = engagement.lines
    assert line.billing_kind == "fixed" and line.billing_type_raw is None
    assert line.unit_price == Decimal("12500.5")
    assert engagement.amount == Decimal("12500.5")
    assert line.discount_percent == Decimal("0.0")


def test_no_billing_type_field_configured_means_default_kind():
    config = MappingConfig(billing_type_field=None, default_billing_kind="time")
    engagement = map_engagement(ACME, config)
    assert [line.billing_kind for line in engagement.lines] == ["time", "time"]
    assert [line.billing_type_raw for line in engagement.lines] == [None, None]


def test_schedules_from_separate_query_and_nested():
    record = copy.deepcopy(ACME)
    record["OpportunityLineItems"]["records"][0]["OpportunityLineItemSchedules"] = {
        "totalSize": 1,
        "done": True,
        "records": [
            {
                "attributes": {"type": "OpportunityLineItemSchedule"},
                "Id": "00o5e00000Sc3AAAAZ",
                "ScheduleDate": "2026-09-30",
                "Type": "Revenue",
                "Quantity": None,
                "Revenue": 12000.0,
            }
        ],
    }
    schedules = [
        {
            "attributes": {"type": "OpportunityLineItemSchedule"},
            "Id": "00o5e00000Sc2AAAAZ",
            "OpportunityLineItemId": "00k5e00000Lm1AAAAZ",
            "ScheduleDate": "2026-06-30",
            "Type": "Revenue",
            "Quantity": None,
            "Revenue": "12000.00",
        },
        {
            "attributes": {"type": "OpportunityLineItemSchedule"},
            "Id": "00o5e00000Sc1AAAAZ",
            "OpportunityLineItemId": "00k5e00000Lm1AAAAZ",
            "ScheduleDate": "2026-04-30",
            "Type": "Both",
            "Quantity": 1,
            "Revenue": 12000,
        },
        {
            "attributes": {"type": "OpportunityLineItemSchedule"},
            "Id": "00o5e00000Sc9AAAAZ",
            "OpportunityLineItemId": "00k5e00000ZZZAAAAZ",
            "ScheduleDate": "2026-04-30",
            "Type": "Quantity",
            "Quantity": 5,
            "Revenue": None,
        },
    ]
    # The nested schedule also arrives through the separate query: kept once.
    schedules.append(
        {
            **record["OpportunityLineItems"]["records"][0][
                "OpportunityLineItemSchedules"
            ]["records"][0],
            "OpportunityLineItemId": "00k5e00000Lm1AAAAZ",
        }
    )
    engagement = map_engagement(record, CONFIG, schedules=schedules)
    assert engagement.lines[0].schedules == (
        ScheduleEntry(
            "00o5e00000Sc1AAAAZ", date(2026, 4, 30), "Both", Decimal(1), Decimal(12000)
        ),
        ScheduleEntry(
            "00o5e00000Sc2AAAAZ",
            date(2026, 6, 30),
            "Revenue",
            None,
            Decimal("12000.00"),
        ),
        ScheduleEntry(
            "00o5e00000Sc3AAAAZ", date(2026, 9, 30), "Revenue", None, Decimal("12000.0")
        ),
    )
    assert engagement.lines[1].schedules == ()


def test_outbound_message_opportunity_maps_without_lines():
    parsed = parse_notifications(
        (FIXTURES / "outbound_two_opportunities.xml").read_bytes()
    )
    engagement = map_engagement(parsed.notifications[0].sobject.as_record(), CONFIG)
    assert engagement.amount == Decimal("48000.0")
    assert engagement.is_won is True
    assert engagement.close_date == date(2026, 3, 31)
    assert engagement.updated_at == datetime(2026, 3, 31, 14, 2, 11, tzinfo=UTC)
    assert engagement.lines == () and engagement.lines_complete is False
    assert engagement.account is None
    assert validate_engagement(engagement, CURRENCIES, PRODUCTS, False, CONFIG) == [
        "Account: the account's fields were not read with the opportunity",
        "OpportunityLineItems: not all line items were read (not selected, or more "
        "pages to fetch)",
    ]


def test_incomplete_line_subquery_is_not_complete():
    record = copy.deepcopy(ACME)
    record["OpportunityLineItems"]["done"] = False
    record["OpportunityLineItems"]["nextRecordsUrl"] = (
        "/services/data/v62.0/query/01g-2"
    )
    engagement = map_engagement(record, CONFIG)
    assert len(engagement.lines) == 2 and engagement.lines_complete is False


def test_unreadable_engagement_values_all_reported():
    record = copy.deepcopy(ACME)
    record["Amount"] = "lots"
    record["CloseDate"] = "31/03/2026"
    record["IsWon"] = "yes"
    record["Account"]["BillingCity"] = ["Berlin"]
    lines = record["OpportunityLineItems"]["records"]
    lines[0]["Quantity"] = True
    lines[1]["UnitPrice"] = "NaN"
    lines[1]["PricebookEntry"]["Product2"]["ProductCode"] = 7
    del lines[1]["Id"]
    assert mapping_problems(record, config=CONFIG) == [
        "Account.BillingCity: expected text, got list",
        "OpportunityLineItems[0].Quantity: expected a number, got True",
        "OpportunityLineItems[1].Id: missing",
        "OpportunityLineItems[1].PricebookEntry.Product2.ProductCode: expected text, "
        "got int",
        "OpportunityLineItems[1].UnitPrice: 'NaN' is not a finite number",
        "Opportunity.CloseDate: '31/03/2026' is not a date (YYYY-MM-DD)",
        "Opportunity.Amount: 'lots' is not a number",
        "Opportunity.IsWon: 'yes' is not true or false",
    ]


def test_lines_not_a_query_result():
    record = copy.deepcopy(ACME)
    record["OpportunityLineItems"] = ["x"]
    assert mapping_problems(record, config=CONFIG) == [
        "Opportunity.OpportunityLineItems: not a query result"
    ]


# ---------------------------------------------------------------- validation


def broken_engagement():
    """A real record with every kind of business problem at once."""
    record = copy.deepcopy(ACME)
    record["CurrencyIsoCode"] = None
    record["CloseDate"] = None
    account = record["Account"]
    account["BillingStreet"] = None
    account["BillingCity"] = ""
    account["BillingCountryCode"] = "Germany"
    account["VAT_Number__c"] = None
    lines = record["OpportunityLineItems"]["records"]
    lines[0]["PricebookEntry"]["Product2"]["ProductCode"] = "UNMAPPED-1"
    lines[0]["Quantity"] = 0
    lines[0]["Billing_Type__c"] = "Retainer"
    lines[1]["PricebookEntry"] = None
    lines[1]["UnitPrice"] = -5
    lines[1]["Discount"] = 120
    lines[1]["Quantity"] = None
    return map_engagement(record, CONFIG)


def test_all_problems_reported_together():
    problems = validate_engagement(
        broken_engagement(), CURRENCIES, PRODUCTS, True, CONFIG
    )
    line0 = "OpportunityLineItems[0] (00k5e00000Lm1AAAAZ)"
    line1 = "OpportunityLineItems[1] (00k5e00000Lm1ABAAZ)"
    assert problems == [
        "Account.BillingStreet: missing (billing address)",
        "Account.BillingCity: missing (billing address)",
        "Account.BillingCountryCode: 'Germany' is not a two-letter ISO code",
        "Account.VAT_Number__c: tax id required but missing",
        "CurrencyIsoCode: missing",
        "CloseDate: missing",
        f"{line0}.PricebookEntry.Product2.ProductCode: 'UNMAPPED-1' is not mapped to a "
        "product",
        f"{line0}.Quantity: must be positive, got 0",
        f"{line0}.Billing_Type__c: 'Retainer' is not a known billing type (fixed, "
        "fixed fee, fixed price, milestone, milestones, t&m, time, time & materials, "
        "time and materials)",
        f"{line1}.PricebookEntry.Product2.ProductCode: missing",
        f"{line1}.Quantity: missing",
        f"{line1}.UnitPrice: must not be negative, got -5",
        f"{line1}.Discount: must be between 0 and 100, got 120",
    ]


def test_tax_id_only_checked_when_required():
    problems = validate_engagement(
        broken_engagement(), CURRENCIES, PRODUCTS, False, CONFIG
    )
    assert not any("VAT_Number__c" in problem for problem in problems)


def test_tax_id_required_without_configured_field():
    engagement = map_engagement(ACME)  # default config: no tax id field
    assert validate_engagement(engagement, CURRENCIES, PRODUCTS, True) == [
        "Account: a tax id is required but no tax id field is configured"
    ]


def test_unknown_currency_and_case_insensitive_known():
    engagement = map_engagement(ACME, CONFIG)
    assert validate_engagement(engagement, {"usd"}, PRODUCTS, False, CONFIG) == [
        "CurrencyIsoCode: EUR is not an active currency"
    ]
    assert validate_engagement(engagement, {"eur"}, PRODUCTS, False, CONFIG) == []


def test_opportunity_without_account_or_lines():
    engagement = map_engagement(PAGE2["records"][0], CONFIG)
    assert engagement.lines == () and engagement.lines_complete is True
    assert validate_engagement(engagement, {"GBP"}, PRODUCTS, True, CONFIG) == [
        "AccountId: the opportunity has no account",
        "OpportunityLineItems: the opportunity has no line items",
    ]


def test_schedule_problems():
    engagement = map_engagement(ACME, CONFIG)
    line = dataclasses.replace(
        engagement.lines[0],
        schedules=(ScheduleEntry("00o5e00000Sc1AAAAZ", None, "Revenue", None, None),),
    )
    engagement = dataclasses.replace(engagement, lines=(line,))
    prefix = (
        "OpportunityLineItems[0] (00k5e00000Lm1AAAAZ).OpportunityLineItemSchedules[0] "
        "(00o5e00000Sc1AAAAZ)"
    )
    assert validate_engagement(engagement, CURRENCIES, PRODUCTS, False, CONFIG) == [
        f"{prefix}.ScheduleDate: missing",
        f"{prefix}: neither Quantity nor Revenue",
    ]


def test_discount_boundaries():
    engagement = map_engagement(ACME, CONFIG)
    for discount, ok in (
        (Decimal(0), True),
        (Decimal(100), True),
        (Decimal("100.01"), False),
        (Decimal("-0.01"), False),
    ):
        line = dataclasses.replace(engagement.lines[1], discount_percent=discount)
        candidate = dataclasses.replace(engagement, lines=(line,))
        problems = validate_engagement(candidate, CURRENCIES, PRODUCTS, False, CONFIG)
        assert (problems == []) is ok, (discount, problems)


def test_config_validation():
    with pytest.raises(ValueError, match="unknown billing kinds"):
        MappingConfig(billing_kind_values={"retainer": "subscription"})
    with pytest.raises(ValueError, match="unknown billing kinds"):
        MappingConfig(default_billing_kind="hourly")
    with pytest.raises(ValueError, match="not a Salesforce API name"):
        MappingConfig(tax_id_field="VAT Number")
    with pytest.raises(ValueError, match="is not ISO"):
        MappingConfig(default_currency="euro")


def test_custom_billing_values():
    config = MappingConfig(
        billing_kind_values={"retainer": "fixed", "milestone": "milestone"}
    )
    record = copy.deepcopy(ACME)
    record["OpportunityLineItems"]["records"][0]["Billing_Type__c"] = " RETAINER "
    assert map_engagement(record, config).lines[0].billing_kind == "fixed"


def test_canonical_objects_are_frozen():
    engagement = map_engagement(ACME, CONFIG)
    with pytest.raises(dataclasses.FrozenInstanceError):
        engagement.name = "changed"
    with pytest.raises(dataclasses.FrozenInstanceError):
        engagement.lines[0].quantity = Decimal(1)


# -------------------------------------------------------------- payload hash


def test_hash_is_stable_and_hex():
    digest = payload_hash(ACME)
    assert digest == payload_hash(copy.deepcopy(ACME))
    assert len(digest) == 64 and int(digest, 16) >= 0


def test_hash_ignores_attributes_volatile_fields_and_key_order():
    echo = copy.deepcopy(ACME)
    echo["SystemModstamp"] = "2026-05-01T00:00:00.000+0000"
    echo["LastModifiedDate"] = "2026-05-01T00:00:00.000+0000"
    echo["attributes"]["url"] = (
        "/services/data/v63.0/sobjects/Opportunity/0065e00000AbCdEAAV"
    )
    echo["Account"]["SystemModstamp"] = "2026-05-01T00:00:00.000+0000"
    reordered = dict(reversed(list(echo.items())))
    assert payload_hash(reordered) == payload_hash(ACME)


def test_hash_changes_with_business_content():
    changed = copy.deepcopy(ACME)
    changed["OpportunityLineItems"]["records"][1]["Quantity"] = 101.0
    assert payload_hash(changed) != payload_hash(ACME)
    renamed = copy.deepcopy(ACME)
    renamed["Account"]["Name"] = "Acme & Co AG"
    assert payload_hash(renamed) != payload_hash(ACME)


def test_hash_ignores_our_write_back_fields_when_told():
    echo = copy.deepcopy(ACME)
    echo["ERP_Order_Number__c"] = "S00042"
    echo["ERP_Status__c"] = "Ordered"
    assert payload_hash(echo) != payload_hash(ACME)
    ignore = ("ERP_Order_Number__c", "ERP_Status__c")
    assert payload_hash(echo, ignore_fields=ignore) == payload_hash(
        ACME, ignore_fields=ignore
    )


def test_hash_normalises_numbers_and_booleans_across_channels():
    rest = {
        "attributes": {"type": "Opportunity"},
        "Amount": 48000.0,
        "IsWon": True,
        "Probability": 100,
    }
    outbound = {
        "attributes": {"type": "Opportunity"},
        "Amount": "48000",
        "IsWon": "true",
        "Probability": "100",
    }
    assert payload_hash(rest) == payload_hash(outbound)
    assert payload_hash({**rest, "Amount": Decimal("48000.00")}) == payload_hash(rest)
    assert payload_hash({**rest, "Amount": 48000.5}) != payload_hash(rest)


def test_hash_distinguishes_type_and_null():
    account = {"attributes": {"type": "Account"}, "Name": "X"}
    contact = {"attributes": {"type": "Contact"}, "Name": "X"}
    assert payload_hash(account) != payload_hash(contact)
    assert payload_hash({**account, "Phone": None}) != payload_hash(
        {**account, "Phone": ""}
    )


def test_hash_ignores_query_locator_of_subqueries():
    first = copy.deepcopy(ACME)
    second = copy.deepcopy(ACME)
    first["OpportunityLineItems"]["nextRecordsUrl"] = (
        "/services/data/v62.0/query/01gA-2"
    )
    second["OpportunityLineItems"]["nextRecordsUrl"] = (
        "/services/data/v62.0/query/01gB-2"
    )
    assert payload_hash(first) == payload_hash(second)


def test_hash_refuses_non_records():
    with pytest.raises(TypeError, match="expected a record dict"):
        payload_hash([ACME])
    with pytest.raises(TypeError, match="cannot hash a object value"):
        payload_hash({"x": object()})
