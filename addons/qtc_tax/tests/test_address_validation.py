import json

import responses

from odoo.exceptions import UserError
from odoo.tests import tagged

from .common import BASE_URL, QtcTaxCase

RESOLVE_URL = f"{BASE_URL}/api/v2/addresses/resolve"


def resolved(**address):
    """An AvaTax ``AddressResolutionModel`` for a resolved address."""
    validated = {
        "addressType": "StreetOrResidentialAddress",
        "line1": "233 S WACKER DR",
        "line2": "",
        "line3": "",
        "city": "CHICAGO",
        "region": "IL",
        "country": "US",
        "postalCode": "60606-6306",
        "latitude": 41.878,
        "longitude": -87.6359,
        **address,
    }
    return {
        "address": {"line1": "233 s wacker", "city": "chicago", "country": "US"},
        "validatedAddresses": [validated],
        "coordinates": {"latitude": 41.878, "longitude": -87.6359},
        "resolutionQuality": "Intersection",
        "taxAuthorities": [
            {"jurisdictionName": "ILLINOIS", "jurisdictionType": "State"}
        ],
        "messages": [],
    }


def unresolved():
    """What AvaTax answers for an address it cannot resolve."""
    return {
        "address": {"line1": "1 Nowhere", "city": "Chicago", "country": "US"},
        "validatedAddresses": [
            {
                "addressType": "UnknownAddressType",
                "line1": "1 Nowhere",
                "city": "Chicago",
                "region": "IL",
                "country": "US",
                "postalCode": "99999",
            }
        ],
        "resolutionQuality": "NotCoded",
        "messages": [
            {
                "summary": "The address is not deliverable.",
                "details": "The physical location exists but there are no homes "
                "on this street.",
                "refersTo": "Address",
                "severity": "Error",
                "source": "Avalara.AvaTax.Common",
            },
            {
                "summary": "The postal code is not valid for the city.",
                "details": "99999 is not a ZIP code of CHICAGO, IL.",
                "refersTo": "Address.PostalCode",
                "severity": "Error",
                "source": "Avalara.AvaTax.Common",
            },
            {
                "summary": "The city could not be determined.",
                "details": "",
                "refersTo": "Address.City",
                "severity": "Error",
                "source": "Avalara.AvaTax.Common",
            },
        ],
    }


@tagged("post_install", "-at_install")
class TestAddressValidation(QtcTaxCase):
    @responses.activate
    def test_invalid_address_is_refused_naming_the_fields(self):
        responses.add(responses.POST, RESOLVE_URL, json=unresolved())
        self.customer.write({"street": "1 Nowhere", "zip": "99999"})
        with self.assertRaises(UserError) as caught:
            self.customer.action_tax_validate_address()
        message = str(caught.exception)
        self.assertIn("Fields to check: ZIP, city.", message)
        self.assertIn("99999 is not a ZIP code of CHICAGO, IL.", message)
        # Nothing was written.
        self.assertEqual(self.customer.zip, "99999")
        self.assertFalse(self.env["qtc.tax.address.wizard"].search([]))

    @responses.activate
    def test_engine_down_is_a_clear_message(self):
        responses.add(
            responses.POST,
            RESOLVE_URL,
            status=503,
            json={"error": {"code": "ServiceNotReady", "message": "busy"}},
        )
        with self.assertRaises(UserError) as caught:
            self.customer.action_tax_validate_address()
        self.assertIn("unavailable", str(caught.exception))
        self.assertIn("not checked", str(caught.exception))

    def test_partner_without_country_or_engine(self):
        self.customer.country_id = False
        with self.assertRaises(UserError) as caught:
            self.customer.action_tax_validate_address()
        self.assertIn("country is missing", str(caught.exception))
        self.customer.country_id = self.env.ref("base.us")
        self.backend.state = "disabled"
        with self.assertRaises(UserError) as caught:
            self.customer.action_tax_validate_address()
        self.assertIn("No active tax engine", str(caught.exception))

    @responses.activate
    def test_normalised_address_is_shown_then_applied(self):
        responses.add(responses.POST, RESOLVE_URL, json=resolved())
        self.customer.write(
            {"street": "233 s wacker", "city": "chicago", "zip": "60606"}
        )
        action = self.customer.action_tax_validate_address()
        [call] = responses.calls
        body = json.loads(call.request.body)
        self.assertEqual(
            (body["line1"], body["city"], body["region"], body["postalCode"]),
            ("233 s wacker", "chicago", "IL", "60606"),
        )
        self.assertTrue(call.request.headers["Authorization"].startswith("Basic "))
        self.assertEqual(
            (action["res_model"], action["target"]),
            ("qtc.tax.address.wizard", "new"),
        )
        wizard = self.env["qtc.tax.address.wizard"].browse(action["res_id"])
        self.assertEqual(
            (wizard.street, wizard.city, wizard.zip, wizard.state_id.code),
            ("233 S WACKER DR", "CHICAGO", "60606-6306", "IL"),
        )
        self.assertEqual(wizard.resolution_quality, "Intersection")
        self.assertIn("ZIP: 60606 -> 60606-6306", wizard.changes)
        self.assertIn("233 s wacker", wizard.current_address)
        # Shown only: the partner is unchanged until Apply.
        self.assertEqual(self.customer.street, "233 s wacker")
        wizard.action_apply()
        self.assertEqual(
            (self.customer.street, self.customer.city, self.customer.zip),
            ("233 S WACKER DR", "CHICAGO", "60606-6306"),
        )
        self.assertEqual(self.customer.state_id, self.env.ref("base.state_us_14"))

    def test_rate_table_checks_the_region(self):
        self.backend.state = "disabled"
        table = self._qtc_make_backend(
            name="Rate table",
            provider="tax_rate_table",
            tax_rate_ids=[
                (
                    0,
                    0,
                    {
                        "country_id": self.env.ref("base.us").id,
                        "state_id": self.env.ref("base.state_us_14").id,
                        "name": "ILLINOIS",
                        "jurisdiction_type": "State",
                        "rate": 6.25,
                    },
                )
            ],
        )
        action = self.customer.action_tax_validate_address()
        wizard = self.env["qtc.tax.address.wizard"].browse(action["res_id"])
        self.assertEqual(wizard.backend_id, table)
        self.customer.state_id = self.env.ref("base.state_us_5")
        with self.assertRaises(UserError) as caught:
            self.customer.action_tax_validate_address()
        self.assertIn("Fields to check: state.", str(caught.exception))
