/** @odoo-module **/
/**
 * The finance dashboard of revenue assurance: one card per check, per flow
 * service level and per reconciliation, read from
 * ``qtc.assurance.dashboard.qtc_dashboard_data`` (QTC User). A click on a card
 * opens the exact records behind its figure.
 */
import { Component, onWillStart, useState } from "@odoo/owl";
import { registry } from "@web/core/registry";
import { useService } from "@web/core/utils/hooks";
import { Layout } from "@web/search/layout";

const SPARK_WIDTH = 120;
const SPARK_HEIGHT = 28;

export class AssuranceDashboard extends Component {
    static template = "qtc_connector_base.AssuranceDashboard";
    static components = { Layout };
    static props = ["*"];

    setup() {
        this.orm = useService("orm");
        this.action = useService("action");
        this.state = useState({ data: null, busy: false });
        onWillStart(() => this.load());
    }

    async load() {
        this.state.data = await this.orm.call(
            "qtc.assurance.dashboard",
            "qtc_dashboard_data",
            []
        );
    }

    async measureNow() {
        this.state.busy = true;
        try {
            await this.orm.call("qtc.assurance.dashboard", "qtc_dashboard_measure", []);
            await this.load();
        } finally {
            this.state.busy = false;
        }
    }

    async openCheck(card) {
        const action = await this.orm.call("qtc.assurance.check", "action_open_records", [
            [card.id],
        ]);
        await this.action.doAction(action);
    }

    async openCheckHistory(card) {
        const action = await this.orm.call("qtc.assurance.check", "action_view_history", [
            [card.id],
        ]);
        await this.action.doAction(action);
    }

    async openSla(card) {
        const method = card.has_records ? "action_open_records" : "action_view_history";
        const action = await this.orm.call("qtc.flow.sla", method, [[card.id]]);
        await this.action.doAction(action);
    }

    async openRun(card) {
        await this.action.doAction({
            type: "ir.actions.act_window",
            res_model: "qtc.reconciliation.run",
            res_id: card.id,
            views: [[false, "form"]],
        });
    }

    async runReconciliation() {
        await this.action.doAction("qtc_connector_base.qtc_reconciliation_wizard_action");
    }

    stateClass(state) {
        return (
            {
                ok: "o_qtc_card_ok",
                breach: "o_qtc_card_breach",
                failed: "o_qtc_card_breach",
            }[state] || "o_qtc_card_new"
        );
    }

    badgeClass(state) {
        return (
            {
                ok: "text-bg-success",
                breach: "text-bg-danger",
                failed: "text-bg-danger",
            }[state] || "text-bg-secondary"
        );
    }

    sparkPoints(values) {
        if (!values || !values.length) {
            return "";
        }
        const top = Math.max(...values, 0) || 1;
        const step = values.length > 1 ? SPARK_WIDTH / (values.length - 1) : 0;
        return values
            .map((value, index) => {
                const x = Math.round(index * step * 10) / 10;
                const y = Math.round((SPARK_HEIGHT - 2 - (value / top) * (SPARK_HEIGHT - 4)) * 10) / 10;
                return `${x},${y}`;
            })
            .join(" ");
    }
}

registry.category("actions").add("qtc_assurance_dashboard", AssuranceDashboard);
