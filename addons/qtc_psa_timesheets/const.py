"""Tables of the PSA connector: provider codes, map and binding names, API
constants. No logic here."""

PROVIDER_PUSH = "psa_push"
PROVIDER_HARVEST = "harvest"
PSA_PROVIDERS = (PROVIDER_PUSH, PROVIDER_HARVEST)

# Event types of stored work items: "work_item.<kind>".
EVENT_TYPE_PREFIX = "work_item."
# Event type of the approved items a push PSA reports for a reconciliation.
EVENT_RECONCILIATION_TOTALS = "reconciliation.totals"

# Value maps (admin-editable) and binding types (set from the exception queue's
# "Link" action) that translate PSA references into Odoo records. A binding wins
# over a value map line, so linking from an exception always takes effect.
MAP_PROJECT = "psa.project"
MAP_TASK = "psa.task"
MAP_MILESTONE = "psa.milestone"
BINDING_PROJECT = "psa.project"
BINDING_TASK = "psa.task"
BINDING_MILESTONE = "psa.milestone"
BINDING_EMPLOYEE = "psa.employee"
# The Odoo models each binding type may point at (qtc.binding checks it): a
# person links an unknown PSA reference from its exception.
BINDING_MODELS = {
    BINDING_PROJECT: ("project.project",),
    BINDING_TASK: ("project.task",),
    BINDING_MILESTONE: ("sale.order.line",),
    BINDING_EMPLOYEE: ("hr.employee",),
}

RATE_POLICIES = [
    ("bill_order_price", "Bill at the order price and flag"),
    ("raise", "Raise an exception"),
]
DEFAULT_BATCH_MAX = 500
# A batch job applies its events this many at a time (progress is reported and
# the cache cleared between chunks, so memory stays bounded).
BATCH_CHUNK_SIZE = 1000

HARVEST_API_URL = "https://api.harvestapp.com"
# Where Harvest requests (carrying the personal access token) may go.
HARVEST_HOSTS = ("api.harvestapp.com",)
HARVEST_USER_AGENT = "QTC Odoo connector (qtc_psa_timesheets)"
HARVEST_PER_PAGE = 2000
