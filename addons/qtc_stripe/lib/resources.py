"""What applying a Stripe event writes, named from the event alone.

The job queue never runs two jobs sharing a resource at once (see the base's
``lib/resources.py``). A Stripe event names the money it moves and who it
belongs to: the object itself, its PaymentIntent, charge, customer and Stripe
invoice, each a Stripe id unique across the account (``pi_...``, ``ch_...``,
``cus_...``). Two events about the same money or the same customer (whose open
invoices a payment without metadata may pay) therefore share a resource. The
Odoo invoice our payment links name in metadata is the invoice's own resource
(``account.move:<id>``), which other jobs on that invoice declare too; an
invoice named by its number only is named by the backend and the number.
"""

from .mapper import METADATA_INVOICE_ID, METADATA_INVOICE_REF

# Fields of a Stripe object that name another object whose money or owner the
# event's work touches (an id, or the expanded object).
REFERENCE_FIELDS = (
    "id",
    "payment_intent",
    "charge",
    "latest_charge",
    "customer",
    "invoice",
)


def _reference(value):
    if isinstance(value, dict):
        value = value.get("id")
    if isinstance(value, str):
        value = value.strip()
        return value or None
    return None


def event_resources(event, backend_id):
    """The resource names of a decoded Stripe event.

    :param event: the decoded event (anything else names nothing)
    :param backend_id: the backend's id, part of every Stripe resource name
    :returns: a sorted list of resource names
    """
    data = event.get("data") if isinstance(event, dict) else None
    obj = data.get("object") if isinstance(data, dict) else None
    if not isinstance(obj, dict):
        return []
    names = {
        f"stripe:{backend_id}:{reference}"
        for reference in map(_reference, (obj.get(f) for f in REFERENCE_FIELDS))
        if reference
    }
    metadata = obj.get("metadata")
    if isinstance(metadata, dict):
        invoice_id = metadata.get(METADATA_INVOICE_ID)
        if isinstance(invoice_id, str):
            text = invoice_id.strip()
            invoice_id = int(text) if text.isascii() and text.isdigit() else None
        number = metadata.get(METADATA_INVOICE_REF)
        if isinstance(invoice_id, int) and not isinstance(invoice_id, bool):
            if invoice_id > 0:
                names.add(f"account.move:{invoice_id}")
        elif isinstance(number, str) and number.strip():
            names.add(f"stripe:{backend_id}:invoice:{number.strip()}")
    return sorted(names)
