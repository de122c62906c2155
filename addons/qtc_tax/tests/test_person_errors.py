"""What a person reads when a tax button refuses: every problem and what to do.

The tax connector's business error paths reachable from buttons, pressed over
HTTP as the web client does (``/web/dataset/call_button``) by a billing user:

- *Confirm* (``action_post``) of an invoice whose customer has no country, an
  invoice the engine rejects, an invoice of an unconfigured engine, and a batch
  where one invoice is refused (its exception carries details and action);
- *Quote taxes* (``action_tax_quote``) of the same invoice;
- *Validate address* (``action_tax_validate_address``) of an address the
  engine cannot resolve, or without a country.

*Commit taxes*, *Settled*, *Apply* and *Reset breaker* only queue work or
write what the person chose: they raise no business error.
"""

import responses

from odoo.addons.qtc_connector_base.tests.common import QtcButtonMixin
from odoo.tests import HttpCase, new_test_user, tagged

from .common import QtcTaxCase, avatax_error
from .test_address_validation import RESOLVE_URL, unresolved

NO_COUNTRY = "ship_to.country: partner_a has no country."
COMPLETE_DATA = "Complete the data named above, then try again."


@tagged("post_install", "-at_install")
class TestTaxPersonErrors(QtcButtonMixin, QtcTaxCase, HttpCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        company = cls.env.company
        cls.billing = new_test_user(
            cls.env,
            "qtc_tax_pe_billing",
            # Validating an address also needs QTC User and contact editing
            # (see the role matrix); the other buttons need invoicing alone.
            groups="base.group_user,account.group_account_invoice,"
            "base.group_partner_manager,qtc_connector_base.group_qtc_user",
            company_id=company.id,
            company_ids=[company.id],
        )

    def press(self, records, method):
        return self.press_button(records, method, login="qtc_tax_pe_billing")

    @responses.activate
    def test_confirm_without_customer_country_says_what_to_fix(self):
        self.fake.register()
        self.customer.country_id = False
        invoice = self.make_invoice()
        error, _result = self.press(invoice, "action_post")
        text = self.assert_person_error(error, [NO_COUNTRY], COMPLETE_DATA)
        self.assertIn("cannot be sent to the tax engine", text.splitlines()[0])
        self.assertEqual(invoice.state, "draft")
        self.assertEqual(self.fake.creates, [])

    @responses.activate
    def test_quote_without_customer_country_says_what_to_fix(self):
        self.fake.register()
        self.customer.country_id = False
        invoice = self.make_invoice()
        error, _result = self.press(invoice, "action_tax_quote")
        self.assert_person_error(error, [NO_COUNTRY], COMPLETE_DATA)

    @responses.activate
    def test_engine_rejection_names_the_fields_in_odoo_words(self):
        self.fake.register()
        self.fake.fail = lambda body: avatax_error(
            400, "InvalidAddress", refers_to="Addresses.ShipTo.PostalCode"
        )
        invoice = self.make_invoice()
        error, _result = self.press(invoice, "action_post")
        self.assert_person_error(
            error,
            ["ship_to.postal_code: ZIP of the delivery address of partner_a"],
            "Correct the fields named above (customer address, exemption "
            "certificate, product tax code), then try again.",
        )
        self.assertEqual(invoice.state, "draft")

    @responses.activate
    def test_unconfigured_engine_names_the_missing_setting(self):
        self.fake.register()
        self.env["qtc.credential"].sudo().search(
            [("backend_id", "=", self.backend.id), ("key", "=", "avatax_license_key")]
        ).unlink()
        invoice = self.make_invoice()
        error, _result = self.press(invoice, "action_post")
        self.assert_person_error(
            error,
            ["Missing or invalid: AvaTax license key"],
            "Complete the backend's settings (QTC Manager).",
        )

    @responses.activate
    def test_batch_confirm_keeps_the_refused_invoice_with_a_full_exception(self):
        self.fake.register()
        good = self.make_invoice([self.workshop])
        self.partner_b.country_id = False
        bad = self.make_invoice([self.workshop], partner=self.partner_b)
        error, result = self.press(good | bad, "action_post")
        self.assertIsNone(error)
        self.assertEqual(result["params"]["type"], "warning")
        self.assertIn(bad.display_name, result["params"]["message"])
        self.assertEqual(good.state, "posted")
        self.assertEqual(bad.state, "draft")
        self.assertEqual(bad.tax_state, "rejected")
        exception = bad.sudo().tax_exception_id
        self.assertEqual(exception.category, "tax")
        self.assertIn("ship_to.country: partner_b has no country.", exception.details)
        self.assertEqual(exception.suggested_action, COMPLETE_DATA)

    @responses.activate
    def test_address_validation_names_the_fields_and_what_to_do(self):
        responses.add(responses.POST, RESOLVE_URL, json=unresolved())
        self.customer.write({"street": "1 Nowhere", "zip": "99999"})
        error, _result = self.press(self.customer, "action_tax_validate_address")
        self.assert_person_error(
            error,
            ["Fields to check: ZIP, city.", "99999 is not a ZIP code of CHICAGO, IL."],
            "Correct the fields to check, then validate the address again.",
        )
        self.customer.country_id = False
        error, _result = self.press(self.customer, "action_tax_validate_address")
        self.assert_person_error(
            error, ["the country is missing"], "Enter the country, then validate"
        )
