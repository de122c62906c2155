from odoo import http
from odoo.addons.web.controllers.dataset import DataSet

from ..exceptions import person_errors


class QtcDataSet(DataSet):
    """The web client's buttons and ORM calls: a business error that escapes
    one reaches the person as a warning naming every problem and what to do,
    instead of a server error with a traceback (see ``exceptions.py``)."""

    @http.route()
    def call_kw(self, model, method, args, kwargs, path=None):
        with person_errors():
            return super().call_kw(model, method, args, kwargs, path=path)

    @http.route()
    def call_button(self, model, method, args, kwargs, path=None):
        with person_errors():
            return super().call_button(model, method, args, kwargs, path=path)
