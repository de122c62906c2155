"""Tables of the Stripe connector: API locations, binding types, status maps."""

API_BASE_URL = "https://api.stripe.com"
# Where the connector's requests (carrying the secret key) may go: the API
# host is the only one it calls (files.stripe.com and connect.stripe.com are
# not used).
OUTBOUND_HOSTS = ("api.stripe.com",)
# Pinned so that the shapes the mapper reads do not change under our feet when
# the account's default API version is upgraded in Stripe's dashboard.
API_VERSION = "2024-06-20"
LIST_PAGE_SIZE = 100

# qtc.binding external types used by this connector.
BINDING_CUSTOMER = "customer"  # cus_... -> res.partner
BINDING_PAYMENT = "payment"  # payment key (pi_... / in_... / cs_...) -> payment
BINDING_CHARGE = "charge"  # ch_... -> account.payment
BINDING_REFUND = "refund"  # re_... -> refund account.payment
BINDING_DISPUTE = "dispute"  # dp_... -> account.move (the disputed invoice)
# dp_... -> the outbound payment booking the funds of a lost dispute
BINDING_DISPUTE_LOSS = "dispute_loss"
BINDING_PAYOUT = "payout"  # po_... -> outbound transfer account.payment
BINDING_FEE = "fee"  # txn_... -> fee journal entry
# A person picks the invoice an unapplied payment pays (exception "Link").
BINDING_PAYMENT_TARGET = "payment_target"  # payment key -> account.move
# The Odoo models each binding type may point at (qtc.binding checks it). A
# payment Odoo's payment_stripe recorded is bound to its transaction when it
# has no payment.
BINDING_MODELS = {
    BINDING_CUSTOMER: ("res.partner",),
    BINDING_PAYMENT: ("account.payment", "payment.transaction"),
    BINDING_CHARGE: ("account.payment", "payment.transaction"),
    BINDING_REFUND: ("account.payment",),
    BINDING_DISPUTE: ("account.move",),
    BINDING_DISPUTE_LOSS: ("account.payment",),
    BINDING_PAYOUT: ("account.payment",),
    BINDING_FEE: ("account.move",),
    BINDING_PAYMENT_TARGET: ("account.move",),
}

# Our dispute flag on invoices, from Stripe's dispute.status.
DISPUTE_FLAGS = [
    ("open", "Open"),
    ("won", "Won"),
    ("lost", "Lost"),
    ("closed", "Closed"),
]
DISPUTE_STATUS_TO_FLAG = {
    "won": "won",
    "lost": "lost",
    "warning_closed": "closed",
    "prevented": "closed",
}
DISPUTE_FLAG_CLOSED = ("won", "lost", "closed")

# payment.transaction states (Odoo's payment module) that will or did post a
# payment: while one of them holds the PaymentIntent we must not post it too.
TRANSACTION_LIVE_STATES = ("draft", "pending", "authorized", "done")

# Refund statuses that move money; the others are waited for or reported.
REFUND_BOOKED_STATUSES = ("succeeded",)
REFUND_FAILED_STATUSES = ("failed", "canceled")

# Waiting for a related event (a refund for its payment): retries after about
# 1, 2, 4, 8 minutes, so a payment delivered late is still found.
WAIT_BASE_SECONDS = 60
WAIT_MAX_SECONDS = 1800

# A worker applying a Stripe event takes up to this many ready events of the
# same backend into its transaction (see applier.py): large enough that Odoo's
# per-transaction and per-call costs are shared, small enough that a batch
# commits within seconds and a rolled-back one costs little.
BATCH_SIZE = 100
# A batch whose entry numbers another transaction took meanwhile (two batches
# opening a period of the journal at once) is applied again at once by the job
# runner, a few times; if it keeps colliding, after about this long.
NUMBERING_RETRY_SECONDS = 5
