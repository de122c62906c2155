from datetime import datetime

from odoo.tests import tagged

from ..lib.errors import BusinessError
from .common import QtcCase


@tagged("post_install", "-at_install")
class TestBindingValueMap(QtcCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.declare_test_binding_models()

    def setUp(self):
        super().setUp()
        self.Binding = self.env["qtc.binding"]
        self.partner = self.env["res.partner"].create({"name": "Acme"})

    def test_bind_lookup_unbind(self):
        self.Binding._qtc_bind(self.backend, "Account", "001A", self.partner)
        self.assertEqual(
            self.Binding._qtc_to_internal(self.backend, "Account", "001A"), self.partner
        )
        self.assertEqual(
            self.Binding._qtc_to_external(self.backend, self.partner, "Account"), "001A"
        )
        self.assertIsNone(
            self.Binding._qtc_to_internal(self.backend, "Account", "nope")
        )
        other = self._qtc_make_backend(name="Other")
        self.assertIsNone(
            self.Binding._qtc_to_internal(other, "Account", "001A"), "per backend"
        )
        self.assertTrue(self.Binding._qtc_unbind(self.backend, "Account", "001A"))
        self.assertFalse(self.Binding._qtc_unbind(self.backend, "Account", "001A"))
        self.assertTrue(self.partner.exists(), "unbinding keeps the record")

    def test_rebinding_moves_the_link_and_stays_unique(self):
        other = self.env["res.partner"].create({"name": "Acme (merged)"})
        self.Binding._qtc_bind(self.backend, "Account", "001A", self.partner)
        self.Binding._qtc_bind(self.backend, "Account", "001A", other)
        bindings = self.Binding.search([("external_id", "=", "001A")])
        self.assertEqual(len(bindings), 1)
        self.assertEqual(bindings.res_id, other.id)

    def test_stale_and_identical_updates_are_recognised(self):
        payload = {"Name": "Acme", "Phone": "1"}
        binding = self.Binding._qtc_bind(
            self.backend,
            "Account",
            "001A",
            self.partner,
            updated_at=datetime(2026, 5, 1, 12, 0),
            payload=payload,
        )
        self.assertEqual(
            binding._qtc_change_kind(datetime(2026, 4, 1), {"Name": "Old"}), "stale"
        )
        self.assertEqual(
            binding._qtc_change_kind(
                datetime(2026, 5, 2), {"Phone": "1", "Name": "Acme"}
            ),
            "identical",
            "key order does not matter",
        )
        self.assertEqual(
            binding._qtc_change_kind(datetime(2026, 5, 2), {"Name": "New"}), "newer"
        )

    def test_value_map_translates_records_and_values(self):
        product_map = self.env["qtc.value.map"].create(
            {"name": "Products", "code": "test.product", "target_model": "res.partner"}
        )
        self.env["qtc.value.map.line"].create(
            {
                "map_id": product_map.id,
                "external_value": "SKU-1",
                "res_id": self.partner.id,
            }
        )
        terms = self.env["qtc.value.map"].create(
            {"name": "Terms", "code": "test.terms"}
        )
        self.env["qtc.value.map.line"].create(
            {"map_id": terms.id, "external_value": "Net 30", "value": "30"}
        )
        Map = self.env["qtc.value.map"]
        self.assertEqual(Map._qtc_map("test.product", "SKU-1"), self.partner)
        self.assertEqual(Map._qtc_map("test.terms", "Net 30"), "30")
        self.assertIsNone(Map._qtc_map("test.terms", "Net 45", required=False))

    def test_unmapped_value_names_the_code_and_the_map(self):
        self.env["qtc.value.map"].create(
            {"name": "Payment terms", "code": "test.terms"}
        )
        with self.assertRaises(BusinessError) as caught:
            self.env["qtc.value.map"]._qtc_map("test.terms", "Net 45")
        self.assertEqual(caught.exception.category, "mapping")
        self.assertIn("'Net 45'", str(caught.exception))
        self.assertIn("Payment terms (test.terms)", str(caught.exception))
        with self.assertRaises(BusinessError) as missing:
            self.env["qtc.value.map"]._qtc_map("no.such.map", "x")
        self.assertIn("No value map no.such.map", str(missing.exception))

    def test_backend_specific_map_wins_over_shared(self):
        Map = self.env["qtc.value.map"]
        shared = Map.create({"name": "Shared", "code": "test.stage"})
        own = Map.create(
            {"name": "Own", "code": "test.stage", "backend_id": self.backend.id}
        )
        for value_map, value in ((shared, "shared"), (own, "own")):
            self.env["qtc.value.map.line"].create(
                {"map_id": value_map.id, "external_value": "Won", "value": value}
            )
        self.assertEqual(Map._qtc_map("test.stage", "Won", backend=self.backend), "own")
        self.assertEqual(Map._qtc_map("test.stage", "Won"), "shared")
