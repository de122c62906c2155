"""AvaTax as a :class:`~.engine.TaxEngine`: the request builders and parsers of
``avatax.py`` on either side of a transport the caller supplies.

The Odoo layer owns HTTP (credentials, timeouts, the correlation id, redacted
logs): it hands this adapter a ``transport`` callable that sends one request and
returns a :class:`Reply` whatever the status, or raises :class:`NoAnswer` when no
response came at all. Everything AvaTax-specific stays here and is tested without
a network:

- quotes are ``SalesOrder`` transactions (never recorded); commits are
  ``SalesInvoice`` transactions with ``commit: true``; refunds ``ReturnInvoice``
  transactions referencing the original invoice;
- a commit is idempotent on the document code: AvaTax refuses to re-create a
  committed code (``DocumentCodeConflict``), and the adapter then reads the
  existing transaction back instead of failing, so a retry after a lost answer
  never records the invoice twice; :meth:`AvataxEngine.find` lets the caller
  check first when it does not know whether an earlier attempt got through;
- every failure is sorted by :func:`avatax.parse_error` into
  :class:`~.engine.TaxEngineUnavailable` or :class:`~.engine.TaxEngineRejected`.
"""

import dataclasses
import json
from collections import namedtuple
from urllib.parse import quote

from . import avatax
from .engine import DocumentType, TaxEngine, TaxEngineRejected

PING_PATH = "/api/v2/utilities/ping"
# What AvaTax answers when a committed transaction code is created again.
CONFLICT_CODES = frozenset({"DocumentCodeConflict"})
NOT_FOUND_CODES = frozenset({"EntityNotFoundError", "TransactionNotFound"})

Reply = namedtuple("Reply", "status body headers")
Reply.__doc__ = """One HTTP answer: ``status`` (int), ``body`` (text, bytes or a
decoded object), ``headers`` (a mapping)."""


class NoAnswer(Exception):
    """Raised by a transport when no response came (timeout, connection error).

    :param reason: a short code such as ``timeout`` or ``unreachable``
    """

    def __init__(self, reason):
        super().__init__(reason)
        self.reason = reason


def transaction_path(company_code, document_code):
    """Return the path of one transaction, both codes URL-encoded.

    :raises ValueError: if a code is empty
    """
    if not company_code or not document_code:
        raise ValueError("the company code and the document code are required")
    return (
        f"/api/v2/companies/{quote(company_code, safe='')}"
        f"/transactions/{quote(document_code, safe='')}"
    )


class AvataxEngine(TaxEngine):
    """The AvaTax REST v2 engine over a transport.

    :param transport: ``callable(method, path, body=None, params=None) -> Reply``;
        raises :class:`NoAnswer` when nothing came back
    :param company_code: the AvaTax company code the transactions belong to
    :raises ValueError: if the company code is empty
    """

    def __init__(self, transport, company_code):
        if not company_code:
            raise ValueError("an AvaTax company code is required")
        self._transport = transport
        self.company_code = company_code

    # -- the interface -------------------------------------------------------------

    def quote(self, doc):
        """Compute the tax of a document without recording it.

        :param doc: a :class:`~.engine.TaxDocument`; sent as a ``SalesOrder``
            whatever its type (AvaTax never records those), so a credit note is
            quoted with positive taxes like an invoice
        :returns: a :class:`~.engine.TaxResult`
        :raises TaxEngineUnavailable, TaxEngineRejected: see ``avatax.parse_error``
        """
        if doc.type != DocumentType.SALES_ORDER:
            doc = _with_type(doc, DocumentType.SALES_ORDER)
        body = avatax.build_create_transaction(doc, self.company_code, commit=False)
        return avatax.parse_transaction(
            self._call("POST", avatax.CREATE_TRANSACTION_PATH, body)
        )

    def commit(self, doc):
        """Record a posted invoice; committing the same code again returns the
        transaction already recorded instead of a second one.

        :param doc: a :class:`~.engine.TaxDocument` of type ``SalesInvoice``
        :returns: a :class:`~.engine.TaxResult` (``committed`` as AvaTax says)
        :raises ValueError: for another document type
        """
        if doc.type != DocumentType.SALES_INVOICE:
            raise ValueError(f"only a SalesInvoice is committed, not a {doc.type}")
        body = avatax.build_create_transaction(doc, self.company_code, commit=True)
        return self._create_once(body, doc.code, DocumentType.SALES_INVOICE)

    def refund(self, doc, original_code, original_date=None):
        """Record the refund of a committed invoice, taxed at its original date.

        :param doc: a :class:`~.engine.TaxDocument` of type ``ReturnInvoice``
        :param original_code: the refunded invoice's document code
        :param original_date: the refunded invoice's date (``datetime.date``)
        :returns: a :class:`~.engine.TaxResult` with negative taxes
        """
        body = avatax.build_refund_transaction(
            doc, self.company_code, original_code, original_date
        )
        return self._create_once(body, doc.code, DocumentType.RETURN_INVOICE)

    def void(self, document_code):
        """Void a committed transaction (``DocVoided``).

        :raises TaxEngineRejected: e.g. the transaction does not exist or is
            locked by a filed return
        """
        self._call(
            "POST",
            avatax.void_path(self.company_code, document_code),
            avatax.build_void_body("DocVoided"),
        )

    def validate_address(self, address):
        """Resolve an address with AvaTax.

        :returns: an :class:`~.engine.AddressResult`
        """
        return avatax.parse_address_resolution(
            self._call(
                "POST",
                avatax.RESOLVE_ADDRESS_PATH,
                avatax.build_resolve_address(address),
            )
        )

    # -- extras --------------------------------------------------------------------

    def find(self, document_code, document_type=DocumentType.SALES_INVOICE):
        """Read an existing transaction back.

        :returns: a :class:`~.engine.TaxResult`, or ``None`` if AvaTax has no
            transaction with that code and type
        """
        try:
            body = self._call(
                "GET",
                transaction_path(self.company_code, document_code),
                params={"documentType": str(document_type), "$include": "Details"},
            )
        except TaxEngineRejected as exc:
            if exc.status == 404 or exc.code in NOT_FOUND_CODES:
                return None
            raise
        return avatax.parse_transaction(body)

    def ping(self):
        """Check the credentials: ``GET /api/v2/utilities/ping``.

        :returns: the decoded answer (``authenticated``, ``version`` ...)
        :raises TaxEngineRejected: the engine said the credentials are wrong
        """
        body = self._call("GET", PING_PATH)
        data = _decode(body)
        if not isinstance(data, dict):
            raise avatax.parse_error(None, None, reason="MalformedResponse")
        if data.get("authenticated") is False:
            raise TaxEngineRejected(
                "AvaTax did not accept the account id and license key",
                code="AuthenticationException",
                fields=("avatax_account_id", "avatax_license_key"),
            )
        return data

    # -- internals -----------------------------------------------------------------

    def _create_once(self, body, code, document_type):
        try:
            return avatax.parse_transaction(
                self._call("POST", avatax.CREATE_TRANSACTION_PATH, body)
            )
        except TaxEngineRejected as exc:
            if exc.code not in CONFLICT_CODES:
                raise
            # Already committed by an earlier attempt whose answer was lost.
            existing = self.find(code, document_type)
            if existing is None:
                raise
            return existing

    def _call(self, method, path, body=None, params=None):
        try:
            reply = self._transport(method, path, body=body, params=params)
        except NoAnswer as exc:
            raise avatax.parse_error(None, None, reason=exc.reason) from None
        if reply.status >= 400:
            raise avatax.parse_error(reply.status, reply.body, reply.headers)
        return reply.body


def _with_type(doc, document_type):
    return dataclasses.replace(doc, type=document_type)


def _decode(body):
    if isinstance(body, (bytes, bytearray)):
        body = body.decode("utf-8", errors="replace")
    if isinstance(body, str):
        try:
            return json.loads(body)
        except ValueError:
            return None
    return body
