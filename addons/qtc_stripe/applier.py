"""Apply many Stripe events in one transaction: the volume path.

Stripe sends one event per request, and each stored event gets its own job
(the base's at-least-once unit). Applied one by one, a payment costs a whole
transaction and Odoo's per-record work (create, post, reconcile). So the job
of a payment event, run by a worker, takes other ready jobs of the same
backend with it (:meth:`StripeBatch.run`) and applies their events together:

1. **Claim.** Up to ``const.BATCH_SIZE - 1`` other pending, ready event jobs
   of the backend, run by the same user and first deliveries (no replay, no
   edited payload), are locked (``FOR UPDATE SKIP LOCKED``) and marked started
   inside the job's own transaction. Nothing of this is visible before the
   commit: if the worker dies or the transaction rolls back, those jobs are
   simply pending again (at-least-once, exactly as for one job). Jobs another
   transaction touched since this one's snapshot are left out (PostgreSQL
   would refuse to lock them under repeatable read), so two workers coalescing
   at once never fail each other. The queue's rule holds for them too: a job
   whose resources (its payment, customer, invoice) another running job holds
   is left to run later, as is one queued after such a job on the same
   resource; the resources of those taken are locked in this transaction.
2. **Plan.** Every event is read once; a payment that names its open invoice
   in the metadata, matched exactly or partially, on a backend that does not
   book fees, goes the bulk way; its bindings, Odoo payment transactions and
   invoices are fetched with one query each for the whole batch. A payment
   whose PaymentIntent is already recorded is skipped in bulk too.
3. **Bulk.** The planned payments are created with one ``create``, posted
   with one ``action_post`` and reconciled with one reconciliation plan; the
   bindings and trace lines are written in bulk. All in a savepoint: if Odoo
   refuses the bulk write, it is undone and every item takes the single path.
4. **Single path.** Everything else (refunds, disputes, payouts, failed
   payments, unapplied cash, overpayments, the second event of the same money
   or the same invoice in the batch...) is applied after the bulk, in job
   order, each event through ``_qtc_handle_event`` in its own savepoint: a
   refund whose payment came in the same batch finds it.

Per-event outcomes decide each job's fate as if it had run alone: applied
events and their jobs are done; a business error fails only its event and
job and opens its exception; a transient error (a refund still waiting for
its payment) puts only that job back in the queue with its backoff. The job
that leads the batch keeps its own event's usual semantics: the lead event is
planned before anything is claimed, and when it cannot go the bulk way it
takes the single path alone, raising its own errors as before.
"""

import logging
import traceback
from dataclasses import dataclass

import psycopg2

from odoo import _, fields
from odoo.addons.qtc_connector_base.exceptions import (
    BusinessError,
    ConcurrencyConflict,
    RetryableError,
)
from odoo.addons.qtc_connector_base.lib import resources as resources_lib

from . import const
from .lib import mapper, matching

_logger = logging.getLogger(__name__)

# Odoo's unique index on posted entry numbers per journal.
MOVE_NUMBER_CONSTRAINT = "account_move_unique_name"

# Other ready jobs of the backend, locked for this transaction. A job whose row
# another transaction changed or locked after this transaction's snapshot has
# an ``xmax`` not older than the snapshot's oldest running transaction: locking
# it would raise a serialization failure under repeatable read, so it is left
# to its own worker. ``age(xmax)`` of a row nobody touched is the maximum.
# ``earlier``: ready pending jobs queued before it that share a resource.
_CANDIDATES_SQL = """
    SELECT j.id, j.resources,
           ARRAY(SELECT o.id FROM qtc_job o
                  WHERE o.state = 'pending' AND o.resources IS NOT NULL
                    AND j.resources IS NOT NULL
                    AND string_to_array(o.resources, E'\\n')
                        && string_to_array(j.resources, E'\\n')
                    AND (o.priority, o.id) < (j.priority, j.id)
                    AND (o.eta IS NULL OR o.eta <= %(now)s))
      FROM qtc_job j
      JOIN qtc_event e ON e.id = j.event_id
     WHERE j.backend_id = %(backend)s
       AND j.state = 'pending'
       AND j.model_name = 'qtc.event'
       AND j.method_name = '_qtc_process'
       AND j.id <> %(job)s
       AND j.event_id <> %(event)s
       AND (j.eta IS NULL OR j.eta <= %(now)s)
       AND j.depends_on_id IS NULL
       AND NOT COALESCE(j.cancel_requested, false)
       -- Only work of the same user, as first delivered: a replay (which
       -- reads the event again from Stripe) or an edited payload runs
       -- alone, with its own user's rights.
       AND j.user_id = %(user)s
       AND COALESCE(j.kwargs, '{}'::jsonb) = '{}'::jsonb
       AND e.payload_origin IS DISTINCT FROM 'edited'
       AND e.state = 'received'
       AND age(j.xmax) > age(xid(pg_snapshot_xmin(pg_current_snapshot())))
  ORDER BY j.priority, j.id
     LIMIT %(limit)s
       FOR UPDATE OF j SKIP LOCKED
"""
_START_SQL = """
    UPDATE qtc_job j
       SET state = 'started', attempts = j.attempts + 1, started_at = %(now)s,
           done_at = NULL,
           worker = (SELECT w.worker FROM qtc_job w WHERE w.id = %(job)s)
     WHERE j.id = ANY(%(ids)s)
 RETURNING j.id, j.event_id
"""


@dataclass(slots=True)
class Outcome:
    """What applying one event came to.

    :ivar state: ``done``, ``ignored`` or ``failed``
    :ivar text: the result sentence (done, ignored)
    :ivar error: the exception (failed)
    :ivar trace: its formatted traceback (failed)
    """

    state: str
    text: str = ""
    error: Exception | None = None
    trace: str | None = None


@dataclass(slots=True)
class _Plan:
    """A payment event going the bulk way."""

    event: object
    job_id: int | None
    change: object
    key: str
    existing: object = None  # the payment already recorded (skip)
    invoice: object = None
    currency: object = None
    amount: float = 0.0
    result: object = None


class StripeBatch:
    """Applies the events of one Stripe backend together; see the module doc.

    :param backend: the ``qtc.backend`` (provider ``stripe``)
    """

    def __init__(self, backend):
        self.backend = backend
        self.env = backend.env

    # ----------------------------------------------------------------- lead

    def run(self, event, job_id):
        """Apply ``event`` (the lead, whose own job ``job_id`` is running) with
        other ready events of the backend.

        :returns: the lead event's result text, or ``None`` when the lead does
            not go the bulk way (the caller applies it alone, as before)
        :raises: non-business database errors: the whole job retries
        """
        lead = self._plan([(event, job_id)], taken=_Taken())
        if not lead.bulk:
            return None
        claimed = self._claim(event, job_id)
        if not claimed:
            return None
        # A replay may have queued a second job for one event: the event is
        # applied once and both jobs share its outcome.
        first_job = {}
        for job, event_id in claimed:
            first_job.setdefault(event_id, job)
        others = self.env["qtc.event"].browse(list(first_job))
        outcomes = self.apply(
            [(event, job_id)] + [(other, first_job[other.id]) for other in others],
            lead=event,
            planned=lead,
        )
        own = outcomes[event.id]
        if own.state == "failed":
            # The bulk write was refused and the lead then failed on its own:
            # as if it had run alone (the claimed jobs roll back to pending).
            raise own.error
        self._finish(claimed, outcomes)
        return own.text

    def _claim(self, event, job_id):
        """Lock other ready jobs of the backend for this transaction.

        :returns: ``[(job id, event id)]`` in queue order; empty when there is
            none or the database refused (the lead then runs alone)
        """
        self.env.flush_all()
        cr = self.env.cr
        params = {
            "backend": self.backend.id,
            "job": job_id,
            "event": event.id,
            "now": fields.Datetime.now(),
            "limit": const.BATCH_SIZE - 1,
            "user": self.env.uid,  # the lead job's user
        }
        try:
            with cr.savepoint(flush=False):
                cr.execute(_CANDIDATES_SQL, params, log_exceptions=False)
                candidates = cr.fetchall()
        except (psycopg2.errors.SerializationFailure, psycopg2.errors.LockNotAvailable):
            # A row changed under a concurrent claim despite the filter: this
            # job simply goes on alone.
            _logger.info("backend %s: no batch this time", self.backend.id)
            return []
        taken = self._lock_resources(job_id, candidates)
        if not taken:
            return []
        cr.execute(_START_SQL, {**params, "ids": taken})
        return sorted(cr.fetchall())

    def _lock_resources(self, job_id, candidates):
        """The candidates this batch may apply, in queue order: those whose
        resources are free (now locked in this transaction, released when it
        ends) and that no left-out job queued before them shares a resource
        with. The lead's own resources are held by its worker already.

        :param candidates: ``(job id, resources text, earlier job ids)`` rows
        :returns: the ids taken
        """
        cr = self.env.cr
        cr.execute("SELECT resources FROM qtc_job WHERE id = %s", (job_id,))
        row = cr.fetchone()
        lead = set(resources_lib.decode(row[0] if row else None))
        taken = []
        for candidate, resources, earlier in candidates:
            if set(earlier) - set(taken) - {job_id}:
                continue  # an earlier job on its resource runs first
            names = set(resources_lib.decode(resources)) - lead
            if names and not resources_lib.try_lock(cr, names):
                continue  # another running job holds one of its resources
            taken.append(candidate)
        return taken

    def _finish(self, claimed, outcomes):
        """Give each claimed job the fate of its event."""
        self.env.flush_all()
        cr = self.env.cr
        now = fields.Datetime.now()
        done = [
            (job, event_id, outcomes[event_id])
            for job, event_id in claimed
            if outcomes[event_id].state != "failed"
        ]
        if done:
            cr.execute(
                """
                UPDATE qtc_job j
                   SET state = 'done', done_at = %(now)s, result = v.result,
                       error_message = NULL, error_kind = NULL, write_date = %(now)s
                  FROM unnest(%(ids)s::int[], %(results)s::text[]) AS v(id, result)
                 WHERE j.id = v.id
                """,
                {
                    "now": now,
                    "ids": [job for job, _event, _outcome in done],
                    "results": [o.text[:10000] for _job, _event, o in done],
                },
            )
            cr.execute(
                """
                UPDATE qtc_event e
                   SET state = v.state, result = v.result, error_message = NULL,
                       write_date = %(now)s
                  FROM unnest(%(ids)s::int[], %(states)s::varchar[],
                              %(results)s::text[]) AS v(id, state, result)
                 WHERE e.id = v.id
                """,
                {
                    "now": now,
                    "ids": [event_id for _job, event_id, _o in done],
                    "states": [o.state for _job, _event, o in done],
                    "results": [o.text[:5000] for _job, _event, o in done],
                },
            )
        self.env["qtc.job"].invalidate_model()
        self.env["qtc.event"].invalidate_model()
        # Boundary (queue bookkeeping): each claimed job's failure is recorded
        # as the runner records it (state, exception), whoever runs the lead.
        jobs = self.env["qtc.job"].sudo()
        for job, event_id in claimed:
            outcome = outcomes[event_id]
            if outcome.state == "failed":
                # The base's own decision for a failed attempt: retry with its
                # backoff, dead, or failed with an exception for finance.
                jobs.browse(job)._qtc_apply_failure(outcome.error, outcome.trace)

    # ---------------------------------------------------------------- batch

    def apply(self, items, lead=None, planned=None):
        """Apply events together: payments in bulk, then the rest one by one.

        :param items: ``[(qtc.event, job id or None)]`` in queue order
        :param lead: the event whose errors the caller raises itself (it takes
            the single path first when the bulk write is refused)
        :param planned: the lead's plan, made before the claim
        :returns: ``{event id: Outcome}``
        :raises psycopg2.OperationalError: the transaction itself is broken
        """
        taken = planned.taken if planned else _Taken()
        rest = [item for item in items if not lead or item[0] != lead]
        plan = self._plan(rest, taken)
        bulk = (planned.bulk if planned else []) + plan.bulk
        single = plan.single
        outcomes = {}
        total = len(items)
        if bulk:
            try:
                with self.env.cr.savepoint():
                    outcomes.update(self._apply_bulk(bulk))
            except psycopg2.OperationalError:
                raise
            except psycopg2.errors.UniqueViolation as error:
                if error.diag.constraint_name != MOVE_NUMBER_CONSTRAINT:
                    raise
                # Another transaction posted entries in the Stripe journal
                # meanwhile and took the numbers this snapshot computed (Odoo
                # numbers the first entry of a period while still a draft, so
                # its own retry on the number does not cover it): one by one
                # would collide the same way. A collision, not a failure: the
                # runner applies the whole batch again at once in a fresh
                # transaction, which sees those numbers.
                raise ConcurrencyConflict(
                    _(
                        "Another transaction numbered entries in journal %s "
                        "meanwhile; the batch is applied again.",
                        self.backend.stripe_journal_id.display_name,
                    ),
                    delay=const.NUMBERING_RETRY_SECONDS,
                ) from None
            except Exception:
                _logger.warning(
                    "backend %s: bulk apply of %s payments refused; applying "
                    "them one by one",
                    self.backend.id,
                    len(bulk),
                    exc_info=True,
                )
                outcomes = {}
                single = sorted(
                    [(p.event, p.job_id) for p in bulk] + single,
                    key=lambda item: (item[0] != lead, item[1] or 0),
                )
        self._progress(len(outcomes), total)
        for position, (event, job_id) in enumerate(single, start=1):
            outcomes[event.id] = self._apply_one(event, job_id)
            if event == lead and outcomes[event.id].state == "failed":
                return outcomes  # the caller raises: nothing else matters
            if position % 50 == 0:
                self._progress(len(outcomes), total)
        self._progress(len(outcomes), total)
        return outcomes

    def _progress(self, done, total):
        if total > 1:
            self.env["qtc.job"]._qtc_progress(
                done,
                total,
                _(
                    "%(done)s of %(total)s Stripe events applied",
                    done=done,
                    total=total,
                ),
            )

    def _apply_one(self, event, job_id):
        """The single path for one event, in its own savepoint."""
        backend = self.backend.with_context(
            qtc_job_id=job_id or self.env.context.get("qtc_job_id"),
            qtc_event_id=event.id,
            qtc_correlation_id=event.correlation_id,
            qtc_stripe_batch=True,
        )
        try:
            with self.env.cr.savepoint():
                text = backend._qtc_handle_event(event)
        except psycopg2.OperationalError:
            raise  # the connection or transaction is gone: the whole job retries
        except Exception as error:
            return Outcome("failed", error=error, trace=traceback.format_exc())
        state = "ignored" if text == "ignored" else "done"
        return Outcome(state, str(text or ""))

    # ----------------------------------------------------------------- plan

    def _plan(self, items, taken):
        """Sort events into the bulk way and the single path.

        Reads everything the bulk way needs for all ``items`` with one query
        per kind of record. Never raises for an event: anything unusual takes
        the single path, which reports it exactly as for one event.
        """
        backend = self.backend
        plan = _BatchPlan(taken)
        candidates = []
        book_fees = bool(
            backend.stripe_book_fees
            and backend.stripe_fee_account_id
            and backend._stripe_has_api_key()
        )
        journal_ok = bool(backend.stripe_journal_id)
        live_backend = backend.environment == "production"
        for event, job_id in items:
            change = _payment_change(event)
            if (
                change is None
                or not journal_ok
                or bool(change.livemode) != live_backend
                or (book_fees and change.charge_id)
                or not (change.invoice_id or change.invoice_ref)
            ):
                plan.single.append((event, job_id))
                continue
            candidates.append(_Plan(event, job_id, change, change.payment_key))
        if not candidates:
            return plan
        keys = [p.key for p in candidates]
        payments = self._bound(const.BINDING_PAYMENT, keys)
        targets = self._bound(const.BINDING_PAYMENT_TARGET, keys, existing=False)
        transactions = self._transactions(
            [p.change.payment_intent_id for p in candidates]
        )
        invoices = self._open_invoices(candidates)
        currencies = {}
        for item in candidates:
            change = item.change
            if item.key in taken.keys or item.key in targets:
                plan.single.append((item.event, item.job_id))
                continue
            existing = payments.get(item.key)
            if existing is not None:
                if existing is False:  # bound to a deleted record
                    plan.single.append((item.event, item.job_id))
                    continue
                item.existing = existing
                taken.keys.add(item.key)
                plan.bulk.append(item)
                continue
            if change.payment_intent_id in transactions:
                plan.single.append((item.event, item.job_id))
                continue
            currency = self._currency(change.currency, currencies)
            match = self._match(change, invoices) if currency else None
            if (
                match is None
                or match.status
                not in (matching.MatchStatus.EXACT, matching.MatchStatus.PARTIAL)
                or match.invoice.id in taken.invoices
            ):
                plan.single.append((item.event, item.job_id))
                continue
            try:
                item.amount = backend._stripe_amount(change.amount, currency)
            except BusinessError:
                plan.single.append((item.event, item.job_id))
                continue
            item.invoice = invoices["records"][match.invoice.id]
            item.currency = currency
            item.result = match
            taken.keys.add(item.key)
            taken.invoices.add(match.invoice.id)
            plan.bulk.append(item)
        return plan

    def _bound(self, external_type, external_ids, existing=True):
        """``{external id: record}`` of this backend's bindings of that type
        (``False`` for a binding whose record is gone), in one query (plus one
        per bound model to check the records exist)."""
        # Boundary (read): the backend's own bindings, read in one query for
        # the whole batch (as _qtc_to_internal reads them one by one).
        bindings = (
            self.env["qtc.binding"]
            .sudo()
            .search_read(
                [
                    ("backend_id", "=", self.backend.id),
                    ("external_type", "=", external_type),
                    ("external_id", "in", list(set(external_ids))),
                ],
                ["external_id", "res_model", "res_id"],
            )
        )
        if not existing:
            return {row["external_id"]: True for row in bindings}
        by_model = {}
        for row in bindings:
            by_model.setdefault(row["res_model"], []).append(row["res_id"])
        alive = {
            model: set(self.env[model].browse(ids).exists().ids)
            for model, ids in by_model.items()
        }
        return {
            row["external_id"]: self.env[row["res_model"]].browse(row["res_id"])
            if row["res_id"] in alive[row["res_model"]]
            else False
            for row in bindings
        }

    def _transactions(self, intent_ids):
        """PaymentIntents Odoo's own payment_stripe holds (those events take
        the single path, which links instead of posting)."""
        intent_ids = [intent for intent in intent_ids if intent]
        if not intent_ids or "payment.transaction" not in self.env:
            return set()
        # Narrow sudo: only to read whether Odoo already recorded this money.
        rows = (
            self.env["payment.transaction"]
            .sudo()
            .search_read(
                [
                    ("provider_reference", "in", intent_ids),
                    ("provider_code", "=", "stripe"),
                    ("state", "in", const.TRANSACTION_LIVE_STATES),
                ],
                ["provider_reference"],
            )
        )
        return {row["provider_reference"] for row in rows}

    def _open_invoices(self, candidates):
        """The open customer invoices the batch's metadata names, fetched with
        one search (as ``_stripe_invoice_candidates`` would one by one)."""
        ids = {p.change.invoice_id for p in candidates if p.change.invoice_id}
        names = {p.change.invoice_ref for p in candidates if p.change.invoice_ref}
        domain = [
            ("company_id", "=", self.backend.company_id.id),
            ("move_type", "=", "out_invoice"),
            ("state", "=", "posted"),
            ("payment_state", "in", ("not_paid", "partial")),
        ]
        named = []
        if ids:
            named.append([("id", "in", list(ids))])
        if names:
            named.append([("name", "in", list(names))])
        condition = named[0] if len(named) == 1 else ["|", *named[0], *named[1]]
        records = self.env["account.move"].search([*domain, *condition])
        by_id = {record.id: record for record in records}
        by_name = {}
        for record in records:
            by_name.setdefault(record.name, []).append(record)
        return {"records": by_id, "by_name": by_name}

    @staticmethod
    def _match(change, invoices):
        found = {}
        if change.invoice_id and change.invoice_id in invoices["records"]:
            record = invoices["records"][change.invoice_id]
            found[record.id] = record
        for record in invoices["by_name"].get(change.invoice_ref, []):
            found[record.id] = record
        if not found:
            return None  # the single path looks wider for suggestions
        try:
            open_invoices = [
                matching.OpenInvoice(
                    id=record.id,
                    name=record.name,
                    partner_key=record.commercial_partner_id.id,
                    currency=record.currency_id.name,
                    amount_residual=_decimal(
                        record.amount_residual, record.currency_id
                    ),
                )
                for record in found.values()
            ]
            return matching.match_payment(
                change.amount,
                change.currency,
                open_invoices,
                invoice_ref=change.invoice_ref,
                invoice_id=change.invoice_id,
            )
        except (TypeError, ValueError):
            return None  # the single path reports it

    def _currency(self, code, cache):
        if code not in cache:
            try:
                cache[code] = self.backend._stripe_currency(code)
            except BusinessError:
                cache[code] = None
        return cache[code]

    # ----------------------------------------------------------------- bulk

    def _apply_bulk(self, plans):
        """Create, post and reconcile the planned payments together; skip the
        ones already recorded.

        :returns: ``{event id: Outcome}``
        """
        backend = self.backend
        outcomes = {}
        traces = []
        new = [p for p in plans if p.existing is None]
        for item in plans:
            if item.existing is not None:
                traces.append(
                    _trace(
                        item,
                        item.existing,
                        "skipped",
                        f"{item.change.event_type} {item.key}",
                    )
                )
                outcomes[item.event.id] = Outcome(
                    "done",
                    _(
                        "Payment %(key)s already recorded as %(name)s.",
                        key=item.key,
                        name=item.existing.display_name,
                    ),
                )
        if new:
            journal = backend._stripe_journal()
            payments = self.env["account.payment"].create(
                [
                    backend._stripe_payment_values(
                        p.change, p.invoice, p.currency, journal
                    )
                    for p in new
                ]
            )
            backend._stripe_post(payments)
            backend._stripe_reconcile_many(
                [
                    (payment, item.invoice)
                    for payment, item in zip(payments, new, strict=True)
                ]
            )
            self._bind_all(new, payments)
            for payment, item in zip(payments, new, strict=True):
                result = item.result
                note = _(
                    "%(status)s match: %(reason)s",
                    status=result.status,
                    reason=result.reason,
                )
                traces.append(_trace(item, payment, "created", note[:250]))
                traces.append(
                    _trace(item, item.invoice, "updated", _("paid by %s", payment.name))
                )
                outcomes[item.event.id] = Outcome(
                    "done",
                    backend._stripe_payment_message(
                        item.change, payment, item.invoice, result
                    ),
                )
        self.env["qtc.trace"]._qtc_insert(traces)
        self.env.flush_all()
        return outcomes

    def _bind_all(self, plans, payments):
        """Bindings of the new payments (PaymentIntent key and charge), created
        in one go; flushed at once so a concurrent batch applying the same
        money collides here and one of the two rolls back.

        Bindings are the system's bookkeeping, written as ``_qtc_bind`` writes
        them (sudo; the binding's own target checks still run) for payments
        this job just created.
        """
        bindings = self.env["qtc.binding"].sudo()
        charges = [p.change.charge_id for p in plans if p.change.charge_id]
        known = (
            bindings.search(
                [
                    ("backend_id", "=", self.backend.id),
                    ("external_type", "=", const.BINDING_CHARGE),
                    ("external_id", "in", charges),
                ]
            )
            if charges
            else bindings
        )
        known_by_id = {binding.external_id: binding for binding in known}
        values = []
        for payment, item in zip(payments, plans, strict=True):
            common = {
                "res_model": payment._name,
                "res_id": payment.id,
                "correlation_id": item.event.correlation_id,
                "backend_id": self.backend.id,
            }
            values.append(
                {
                    **common,
                    "external_type": const.BINDING_PAYMENT,
                    "external_id": item.key,
                }
            )
            charge = item.change.charge_id
            if charge and charge in known_by_id:
                known_by_id[charge].write(
                    {
                        key: common[key]
                        for key in ("res_model", "res_id", "correlation_id")
                    }
                )
            elif charge:
                values.append(
                    {
                        **common,
                        "external_type": const.BINDING_CHARGE,
                        "external_id": charge,
                    }
                )
        bindings.create(values).flush_recordset()


class _Taken:
    """Payment keys and invoices the batch already deals with: a second event
    of the same money, or for the same invoice, takes the single path after
    the bulk (and then sees the first one's payment)."""

    __slots__ = ("invoices", "keys")

    def __init__(self):
        self.keys = set()
        self.invoices = set()


class _BatchPlan:
    __slots__ = ("bulk", "single", "taken")

    def __init__(self, taken):
        self.taken = taken
        self.bulk = []
        self.single = []


def _payment_change(event):
    """The event's only change when it is a ``PaymentReceived``, else ``None``."""
    try:
        data = event._qtc_payload_json()
        if not isinstance(data, dict) or not mapper.is_handled(data.get("type")):
            return None
        changes = mapper.map_event(data)
    except (ValueError, TypeError):
        return None
    if len(changes) != 1 or not isinstance(changes[0], mapper.PaymentReceived):
        return None
    return changes[0]


def _decimal(amount, currency):
    from .models.qtc_backend import _to_decimal

    return _to_decimal(amount, currency)


def _trace(item, record, operation, note):
    """A ``qtc.trace`` line for one event of the batch (``_qtc_record`` with
    that event's correlation instead of the running job's context)."""
    event = item.event
    return {
        "correlation_id": event.correlation_id,
        "event_id": event.id,
        "job_id": item.job_id or False,
        "backend_id": event.backend_id.id,
        "res_model": record._name,
        "res_id": record.id,
        "res_name": (record.display_name or "")[:250],
        "operation": operation,
        "note": note,
    }


__all__ = ["Outcome", "RetryableError", "StripeBatch"]
