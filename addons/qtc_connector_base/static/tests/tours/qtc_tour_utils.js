/** @odoo-module **/
/**
 * Helpers for the QTC tours (run by ``QtcTourCase`` in the Python tests).
 *
 * ``screenshotSteps(name)``: the test saves a screenshot of the page as it is
 * at this point of the tour, as ``<screenshots>/tours/<tour>/<nn>-<name>.png``
 * (``--screenshots``; the test command uses ``.qtc/screenshots``), and the tour
 * goes on only once the picture is taken.
 */

export function screenshotSteps(name) {
    return [
        {
            content: `Screenshot: ${name}`,
            trigger: "body",
            run() {
                console.log(`qtc-screenshot:${name}`);
            },
        },
        {
            content: `Screenshot taken: ${name}`,
            trigger: `body[data-qtc-screenshot="${name}"]`,
        },
    ];
}
