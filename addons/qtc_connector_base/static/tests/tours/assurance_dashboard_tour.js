/** @odoo-module **/
/**
 * The revenue assurance dashboard in a browser: its cards render with their
 * figures, a breached card opens the records it counted, and the way back
 * shows the dashboard again.
 */
import { registry } from "@web/core/registry";

registry.category("web_tour.tours").add("qtc_assurance_dashboard_tour", {
    url: "/odoo/action-qtc_connector_base.qtc_assurance_dashboard_action",
    steps: () => [
        {
            content: "The leak cards are there, with a count and an amount",
            trigger: ".o_qtc_assurance .o_qtc_card_breach .o_qtc_count",
        },
        {
            trigger: ".o_qtc_assurance .o_qtc_card_breach .o_qtc_amount",
        },
        {
            content: "Service levels and reconciliations have their sections",
            trigger: ".o_qtc_assurance h2:contains('Service levels')",
        },
        {
            content: "A breached card opens exactly the records it counted",
            trigger: ".o_qtc_assurance .o_qtc_card_breach .card-body",
            run: "click",
        },
        {
            trigger: ".o_list_view .o_data_row",
        },
        {
            content: "Back to the dashboard",
            trigger: ".o_breadcrumb .o_back_button a, .o_breadcrumb li:first-child a",
            run: "click",
        },
        {
            trigger: ".o_qtc_assurance .o_qtc_card",
        },
    ],
});
