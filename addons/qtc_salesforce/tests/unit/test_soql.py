"""Delta-sync SOQL: exact queries, escaping, injection refused, API usage."""

from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from fractions import Fraction

import pytest

from qtc_salesforce.lib.soql import (
    Condition,
    LimitInfoError,
    SoqlError,
    Subquery,
    account_query,
    build_delta_query,
    contact_query,
    literal,
    opportunity_query,
    parse_filter,
    parse_limit_info,
    quote_string,
    render_conditions,
    schedule_query,
    should_throttle,
    validate_field_path,
    validate_identifier,
)

WATERMARK = datetime(2026, 1, 1, tzinfo=UTC)

ACCOUNT_SELECT = (
    "Id, Name, BillingStreet, BillingCity, BillingPostalCode, BillingStateCode, "
    "BillingCountryCode, Phone, Website, CurrencyIsoCode, SystemModstamp, "
    "LastModifiedDate"
)


# ------------------------------------------------------------------ queries


def test_account_query_exact():
    assert account_query(WATERMARK, tax_id_field="VAT_Number__c") == (
        f"SELECT {ACCOUNT_SELECT}, VAT_Number__c FROM Account "
        "WHERE SystemModstamp > 2026-01-01T00:00:00Z "
        "ORDER BY SystemModstamp, Id"
    )


def test_full_sync_has_no_watermark_filter():
    assert account_query(None) == (
        f"SELECT {ACCOUNT_SELECT} FROM Account ORDER BY SystemModstamp, Id"
    )


def test_contact_query_exact():
    assert contact_query(WATERMARK) == (
        "SELECT Id, AccountId, FirstName, LastName, Email, Phone, MobilePhone, "
        "Title, SystemModstamp, LastModifiedDate FROM Contact "
        "WHERE SystemModstamp > 2026-01-01T00:00:00Z ORDER BY SystemModstamp, Id"
    )


def test_opportunity_query_exact_default_filter():
    assert opportunity_query(WATERMARK, tax_id_field="VAT_Number__c") == (
        "SELECT Id, AccountId, Name, CloseDate, CurrencyIsoCode, StageName, Amount, "
        "IsWon, Description, SystemModstamp, LastModifiedDate, Account.Id, "
        "Account.Name, Account.BillingStreet, Account.BillingCity, "
        "Account.BillingPostalCode, Account.BillingStateCode, "
        "Account.BillingCountryCode, Account.Phone, Account.Website, "
        "Account.CurrencyIsoCode, Account.SystemModstamp, Account.VAT_Number__c, "
        "(SELECT Id, PricebookEntry.Product2.ProductCode, Quantity, UnitPrice, "
        "Discount, Description, Billing_Type__c FROM OpportunityLineItems "
        "ORDER BY Id) "
        "FROM Opportunity WHERE SystemModstamp > 2026-01-01T00:00:00Z "
        "AND IsWon = true ORDER BY SystemModstamp, Id"
    )


def test_opportunity_query_custom_filter_and_no_billing_field():
    query = opportunity_query(
        WATERMARK,
        opportunity_filter="StageName = 'Closed Won' AND Type IN ('New', 'Renewal')",
        billing_type_field=None,
    )
    assert "Billing_Type__c" not in query
    assert query.endswith(
        "WHERE SystemModstamp > 2026-01-01T00:00:00Z AND StageName = 'Closed Won' "
        "AND Type IN ('New', 'Renewal') ORDER BY SystemModstamp, Id"
    )


def test_opportunity_query_blank_filter():
    query = opportunity_query(WATERMARK, opportunity_filter="  ")
    assert query.endswith(
        "WHERE SystemModstamp > 2026-01-01T00:00:00Z ORDER BY SystemModstamp, Id"
    )


def test_watermark_in_other_zone_converted_and_floored():
    moment = datetime(2026, 1, 1, 1, 30, 5, 999999, tzinfo=timezone(timedelta(hours=2)))
    assert "SystemModstamp > 2025-12-31T23:30:05Z" in account_query(moment)


def test_lookback_moves_filter_back():
    query = build_delta_query("Account", ["Id"], WATERMARK, lookback_seconds=300)
    assert query == (
        "SELECT Id, SystemModstamp FROM Account "
        "WHERE SystemModstamp > 2025-12-31T23:55:00Z ORDER BY SystemModstamp, Id"
    )


@pytest.mark.parametrize("lookback", [-1, 1.5, True])
def test_bad_lookback(lookback):
    with pytest.raises(SoqlError, match="lookback_seconds"):
        build_delta_query("Account", ["Id"], WATERMARK, lookback_seconds=lookback)


def test_naive_or_wrong_type_watermark_refused():
    with pytest.raises(SoqlError, match="naive datetime"):
        account_query(datetime(2026, 1, 1))
    with pytest.raises(SoqlError, match="watermark must be a datetime"):
        account_query("2026-01-01T00:00:00Z")


def test_duplicate_fields_dropped_case_insensitively_and_limit():
    query = build_delta_query(
        "Contact", ["Id", "Email", "email", "SystemModstamp"], None, limit=10
    )
    assert query == (
        "SELECT Id, Email, SystemModstamp FROM Contact ORDER BY SystemModstamp, Id "
        "LIMIT 10"
    )


@pytest.mark.parametrize("limit", [0, -1, "10", True])
def test_bad_limit(limit):
    with pytest.raises(SoqlError, match="limit"):
        build_delta_query("Contact", ["Id"], None, limit=limit)


def test_fields_must_be_a_list():
    with pytest.raises(SoqlError, match="not one string"):
        build_delta_query("Contact", "Id, Name", None)
    with pytest.raises(SoqlError, match="no fields"):
        build_delta_query("Contact", [], None)


def test_schedule_query():
    assert schedule_query(
        ["00k5e00000AbCdEAAV", "00k5e00000AbCdF", "00k5e00000AbCdEAAV"]
    ) == (
        "SELECT Id, OpportunityLineItemId, ScheduleDate, Type, Quantity, Revenue, "
        "Description FROM OpportunityLineItemSchedule WHERE OpportunityLineItemId "
        "IN ('00k5e00000AbCdEAAV', '00k5e00000AbCdF') "
        "ORDER BY OpportunityLineItemId, ScheduleDate, Id"
    )


def test_schedule_query_refuses_non_ids_and_sizes():
    with pytest.raises(SoqlError, match="not a Salesforce id"):
        schedule_query(["00k5e00000AbCdE') OR Id != ('"])
    with pytest.raises(SoqlError, match="no line item ids"):
        schedule_query([])
    with pytest.raises(SoqlError, match="301 ids in one query"):
        schedule_query([f"00k5e00000Ab{n:06d}" for n in range(301)])
    assert (
        schedule_query([f"00k5e00000Ab{n:06d}" for n in range(300)]).count("'") == 600
    )


def test_subquery_render():
    assert Subquery("Contacts", ("Id", "Email"), order_by=()).render() == (
        "(SELECT Id, Email FROM Contacts)"
    )
    with pytest.raises(SoqlError):
        Subquery("Contacts WHERE Id != null", ("Id",)).render()


# --------------------------------------------------------------- identifiers


@pytest.mark.parametrize(
    "name",
    [
        "Id",
        "Billing_Type__c",
        "SBQQ__Quote__c",
        "ns__Billing_Type__c",
        "Account__r",
        "Product2",
        "Latitude__s",
        "A" * 80,
    ],
)
def test_valid_identifiers(name):
    assert validate_identifier(name) == name


@pytest.mark.parametrize(
    "name",
    [
        "",
        "Name; DELETE",
        "Name FROM User--",
        "Name'",
        "1Field",
        "_Field",
        "Field_",
        "a___b",
        "a__b__c__d",
        "Account.Name",
        "Na me",
        "Nom\u00e9",
        "A" * 81,
        None,
        42,
    ],
)
def test_invalid_identifiers(name):
    with pytest.raises(SoqlError, match="not a Salesforce API name"):
        validate_identifier(name)


def test_field_paths():
    assert validate_field_path("PricebookEntry.Product2.ProductCode")
    assert validate_field_path("A.B.C.D.E.F") == "A.B.C.D.E.F"
    with pytest.raises(SoqlError, match="more than five relationships"):
        validate_field_path("A.B.C.D.E.F.G")
    for bad in ("Account..Name", ".Name", "Name.", "Account.Name)", ""):
        with pytest.raises(SoqlError, match="not a field path"):
            validate_field_path(bad)


def test_injected_field_names_rejected_everywhere():
    with pytest.raises(SoqlError):
        account_query(WATERMARK, tax_id_field="Name FROM User WHERE Id != null--")
    with pytest.raises(SoqlError):
        opportunity_query(WATERMARK, billing_type_field="x) FROM Contact (")
    with pytest.raises(SoqlError):
        contact_query(WATERMARK, extra_fields=["Email, (SELECT Id FROM Cases)"])
    with pytest.raises(SoqlError):
        build_delta_query("Account WHERE Id != null", ["Id"], None)


# ------------------------------------------------------------------ literals


@pytest.mark.parametrize(
    "value, expected",
    [
        ("O'Brien", r"'O\'Brien'"),
        ("back\\slash", r"'back\\slash'"),
        ('say "hi"', r"""'say \"hi\"'"""),
        ("line\nbreak\ttab\rcr", r"'line\nbreak\ttab\rcr'"),
        ("\b\f", r"'\b\f'"),
        ("100% _wild_", "'100% _wild_'"),
        ("' OR Name != '", r"'\' OR Name != \''"),
        ("\\' OR 1=1 --", r"'\\\' OR 1=1 --'"),
        ("東京 Société", "'東京 Société'"),
        ("", "''"),
    ],
)
def test_quote_string(value, expected):
    assert quote_string(value) == expected


def test_quote_string_refuses_unwritable_control_characters():
    with pytest.raises(SoqlError, match=r"U\+0000"):
        quote_string("a\x00b")
    with pytest.raises(SoqlError, match=r"U\+001B"):
        quote_string("a\x1bb")
    with pytest.raises(SoqlError, match="expected a string"):
        quote_string(5)


@pytest.mark.parametrize(
    "value, expected",
    [
        (None, "null"),
        (True, "true"),
        (False, "false"),
        (42, "42"),
        (-7, "-7"),
        (Decimal("1E+3"), "1000"),
        (Decimal("12.50"), "12.50"),
        (0.1, "0.1"),
        (date(2026, 3, 31), "2026-03-31"),
        (datetime(2026, 3, 31, 14, 2, 11, tzinfo=UTC), "2026-03-31T14:02:11Z"),
    ],
)
def test_literal(value, expected):
    assert literal(value) == expected


@pytest.mark.parametrize(
    "value", [float("nan"), Decimal("Infinity"), object(), [1], b"x"]
)
def test_literal_refuses(value):
    with pytest.raises(SoqlError):
        literal(value)


# -------------------------------------------------------------------- filter


def test_parse_filter_default():
    assert parse_filter("IsWon = true") == (Condition("IsWon", "=", True),)


def test_parse_filter_all_value_kinds():
    conditions = parse_filter(
        "StageName = 'Closed \\'Won\\'' and Amount >= 1000.50 AND Probability > 90 "
        "AND CloseDate <= 2026-12-31 AND SystemModstamp < 2026-06-01T00:00:00Z "
        "AND Type NOT IN ('Partner', 'Internal') AND Description != null "
        "AND Name LIKE 'ACME%' AND Region__c <> 'EU' AND Account.Type in ('Customer')"
    )
    assert conditions == (
        Condition("StageName", "=", "Closed 'Won'"),
        Condition("Amount", ">=", Decimal("1000.50")),
        Condition("Probability", ">", 90),
        Condition("CloseDate", "<=", date(2026, 12, 31)),
        Condition("SystemModstamp", "<", datetime(2026, 6, 1, tzinfo=UTC)),
        Condition("Type", "NOT IN", ("Partner", "Internal")),
        Condition("Description", "!=", None),
        Condition("Name", "LIKE", "ACME%"),
        Condition("Region__c", "!=", "EU"),
        Condition("Account.Type", "IN", ("Customer",)),
    )
    assert render_conditions(conditions) == (
        "StageName = 'Closed \\'Won\\'' AND Amount >= 1000.50 AND Probability > 90 "
        "AND CloseDate <= 2026-12-31 AND SystemModstamp < 2026-06-01T00:00:00Z "
        "AND Type NOT IN ('Partner', 'Internal') AND Description != null "
        "AND Name LIKE 'ACME%' AND Region__c != 'EU' AND Account.Type IN ('Customer')"
    )


def test_parse_filter_blank():
    assert parse_filter("") == ()
    assert parse_filter(None) == ()


@pytest.mark.parametrize(
    "text, message",
    [
        ("IsWon = true OR IsWon = false", "OR at position 13"),
        ("IsWon = true; DELETE FROM Account", "unexpected ';"),
        ("(IsWon = true)", "expected a field name at position 0"),
        ("IsWon = true AND", "filter ends after AND"),
        ("IsWon =", "filter ends where a value was expected"),
        ("IsWon true", "expected an operator at position 6"),
        ("IsWon = true IsClosed = true", "expected AND at position 13"),
        ("Name = 'unterminated", 'unexpected "\'untermina"'),
        ("Name = 'x' --", "unexpected '--'"),
        ("Name = Id", "expected a value at position 7, found 'Id'"),
        ("Type IN 'New'", "expected ( at position 8"),
        ("Type IN ('New' 'Old')", "expected , or ) at position 15"),
        ("Type IN ()", "expected a value at position 9"),
        ("Type NOT = 'x'", "expected IN after NOT"),
        ("Name LIKE 5", "LIKE compares with a string"),
        ("Amount > null", "> cannot compare with None"),
        ("Name = 'a\\qb'", "invalid escape \\q"),
        ("Name LIKE '100\\%'", "escaped LIKE wildcard"),
        ("CloseDate = 2026-02-30", "bad date '2026-02-30'"),
        ("Account..Name = 'x'", "not a field path at position 0"),
        ("Name = 'x' AND Id IN (SELECT Id FROM Contact)", "expected a value"),
        ('Name = "x"', "unexpected '\"x\"'"),
    ],
)
def test_parse_filter_errors(text, message):
    with pytest.raises(SoqlError) as caught:
        parse_filter(text)
    assert message in str(caught.value)


def test_condition_refuses_bad_operator_and_values():
    with pytest.raises(SoqlError, match="unsupported operator"):
        Condition("Name", "INCLUDES", "x")
    with pytest.raises(SoqlError, match="non-empty list"):
        Condition("Name", "IN", ())
    with pytest.raises(SoqlError, match="non-empty list"):
        Condition("Name", "IN", ["x"])
    with pytest.raises(SoqlError, match="not a field path"):
        Condition("Name = 'x' OR Name", "=", "y")


# ---------------------------------------------------------------- API usage


@pytest.mark.parametrize(
    "header, expected",
    [
        ("api-usage=25/15000", (25, 15000)),
        ("api-usage=10018/100000; api-bursts=1/750", (10018, 100000)),
        (
            "per-app-api-usage=17/250(appName=sample-connected-app); api-usage=25/5000",
            (25, 5000),
        ),
        ("API-Usage = 0/5000 ", (0, 5000)),
        ("api-usage=110018/100000", (110018, 100000)),
    ],
)
def test_parse_limit_info(header, expected):
    assert parse_limit_info(header) == expected


@pytest.mark.parametrize(
    "header, message",
    [
        (None, "no Sforce-Limit-Info header"),
        ("", "no Sforce-Limit-Info header"),
        ("per-app-api-usage=17/250(appName=x)", "no api-usage in Sforce-Limit-Info"),
        ("api-usage", "api-usage without a value"),
        ("api-usage=25", "api-usage is not used/max: '25'"),
        ("api-usage=25/", "api-usage is not used/max"),
        ("api-usage=-1/5000", "api-usage is not used/max"),
        ("api-usage=a/b", "api-usage is not used/max"),
        ("api-usage=1.5/5000", "api-usage is not used/max"),
        ("api-usage=25/0", "api-usage maximum is 0"),
        ("api-usage=1/5; api-usage=2/5", "api-usage given twice"),
        ("api-usage=1/" + "9" * 13, "api-usage is not used/max"),
    ],
)
def test_parse_limit_info_malformed(header, message):
    with pytest.raises(LimitInfoError) as caught:
        parse_limit_info(header)
    assert message in str(caught.value)


@pytest.mark.parametrize(
    "used, maximum, reserve, expected",
    [
        (25, 15000, 0.1, False),
        (13499, 15000, 0.1, False),
        (13500, 15000, 0.1, True),  # exactly the reserve left: stop
        (15000, 15000, 0, True),
        (14999, 15000, 0, False),
        (16000, 15000, 0.1, True),  # burst above the maximum
        (66, 100, Fraction(1, 3), False),
        (67, 100, Fraction(1, 3), True),
        (8999, 10000, Decimal("0.1"), False),
        (9000, 10000, Decimal("0.1"), True),
    ],
)
def test_should_throttle(used, maximum, reserve, expected):
    assert should_throttle(used, maximum, reserve) is expected


@pytest.mark.parametrize(
    "used, maximum, reserve",
    [
        (-1, 100, 0.1),
        (1, 0, 0.1),
        (1, 100, 1),
        (1, 100, -0.1),
        (1.0, 100, 0.1),
        (1, 100, "0.1"),
        (True, 100, 0.1),
    ],
)
def test_should_throttle_refuses_bad_input(used, maximum, reserve):
    with pytest.raises(ValueError):
        should_throttle(used, maximum, reserve)
