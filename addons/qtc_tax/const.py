"""Tables of the tax connector: endpoints, states, defaults. No logic here."""

AVATAX_BASE_URLS = {
    "sandbox": "https://sandbox-rest.avatax.com",
    "production": "https://rest.avatax.com",
}
# Where AvaTax requests (carrying the license key) may go, per environment:
# sandbox credentials to the sandbox only, production ones to production.
AVATAX_HOSTS = {
    "sandbox": ("sandbox-rest.avatax.com",),
    "production": ("rest.avatax.com",),
}

TAX_STATES = [
    ("none", "Not quoted"),
    ("quoted", "Quoted"),
    ("committed", "Committed"),
    ("pending", "Pending (engine unavailable)"),
    ("fallback", "Posted with Odoo taxes (true-up queued)"),
    ("voided", "Voided"),
    ("rejected", "Rejected by the engine (data to fix)"),
]

# Who may quote and commit invoice taxes by hand (with write access to them).
INVOICING_GROUP = "account.group_account_invoice"
# Who may quote an order's taxes by hand (with write access to it).
SALES_GROUP = "sales_team.group_sale_salesman"

OUTAGE_POLICIES = [
    ("hold", "Hold: keep the invoice in draft until the engine answers"),
    ("fallback", "Fallback: post with Odoo's taxes, true-up later"),
]

JURISDICTION_TYPES = [
    ("Country", "Country"),
    ("State", "State"),
    ("County", "County"),
    ("City", "City"),
    ("Special", "Special district"),
]

# Short labels in the names of the Odoo taxes created per jurisdiction rate.
JURISDICTION_LABELS = {
    "Country": "CNT",
    "State": "STA",
    "County": "CTY",
    "City": "CIT",
    "Special": "STJ",
}

# Move types the engine taxes: customer invoices and credit notes.
TAXED_MOVE_TYPES = ("out_invoice", "out_refund")

DEFAULT_BREAKER_THRESHOLD = 5
DEFAULT_BREAKER_WINDOW = 60
DEFAULT_BREAKER_COOLDOWN = 120
# Retry schedule of held and uncommitted invoices: doubling from the first delay
# up to the cap, for as long as the engine stays down.
RETRY_FIRST_DELAY = 60
RETRY_MAX_DELAY = 3600
