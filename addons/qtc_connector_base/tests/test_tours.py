"""Browser tests of the base, in headless Chromium (see ``QtcTourCase``)."""

from odoo.tests import tagged

from .common import QtcTourCase


@tagged("post_install", "-at_install")
class TestTours(QtcTourCase):
    def test_admin_opens_quote_to_cash(self):
        shots = self.run_tour("/odoo", "qtc_menu_admin", login="admin")
        self.assertEqual(
            [shot.name for shot in shots],
            ["01-quote-to-cash-menu.png", "02-health.png"],
        )
        for shot in shots:
            self.assertTrue(shot.is_file(), shot)
            self.assertEqual(shot.read_bytes()[:8], b"\x89PNG\r\n\x1a\n", shot)
