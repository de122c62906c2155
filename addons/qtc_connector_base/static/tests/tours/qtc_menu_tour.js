/** @odoo-module **/

import { registry } from "@web/core/registry";
import { stepUtils } from "@web_tour/tour_service/tour_utils";

import { screenshotSteps } from "./qtc_tour_utils";

// An administrator opens Quote-to-Cash from the apps menu: the exception
// inbox is its first page, and the Health page is one click away.
registry.category("web_tour.tours").add("qtc_menu_admin", {
    url: "/odoo",
    steps: () => [
        stepUtils.showAppsMenuItem(),
        {
            content: "Open the Quote-to-Cash app",
            trigger: '.o_app[data-menu-xmlid="qtc_connector_base.qtc_menu_root"]',
            run: "click",
        },
        {
            content: "The exception inbox is shown",
            trigger: '.o_main_navbar .o_menu_brand:contains("Quote-to-Cash")',
        },
        {
            trigger: '.o_breadcrumb .active:contains("Exceptions")',
        },
        {
            trigger: ".o_action_manager .o_list_view",
        },
        ...screenshotSteps("quote-to-cash-menu"),
        {
            content: "Open the Health page",
            trigger: '.o_menu_sections [data-menu-xmlid="qtc_connector_base.qtc_backend_menu_dashboard"]',
            run: "click",
        },
        {
            trigger: '.o_breadcrumb .active:contains("Connector health")',
        },
        {
            trigger: ".o_action_manager .o_kanban_view",
        },
        ...screenshotSteps("health"),
    ],
});
