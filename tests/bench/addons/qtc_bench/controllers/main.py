from odoo import http
from odoo.http import request


class QtcBenchController(http.Controller):
    @http.route(
        "/qtc_bench/insert",
        type="http",
        auth="public",
        methods=["POST"],
        csrf=False,
        save_session=False,
    )
    def insert_one_row(self, **_kwargs):
        """The platform floor: read the body, insert one row, answer 200."""
        body = request.httprequest.get_data()
        request.env.cr.execute(
            "INSERT INTO qtc_bench_row (payload, create_date) VALUES (%s, now())",
            (body.decode(errors="replace"),),
        )
        return request.make_json_response({"ok": True})
