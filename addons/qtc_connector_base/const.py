"""Tables of the connector base: states, categories, defaults. No logic here."""

JOB_STATES = [
    ("pending", "Pending"),
    ("started", "Started"),
    ("done", "Done"),
    ("failed", "Failed"),
    ("dead", "Dead"),
    ("cancelled", "Cancelled"),
]
# Jobs a worker may still pick up or is running: the identity key is unique among
# pending jobs only, so new work may be queued while an older copy runs.
JOB_ACTIVE_STATES = ("pending", "started")

EVENT_STATES = [
    ("received", "Received"),
    ("done", "Done"),
    ("ignored", "Ignored"),
    ("failed", "Needs attention"),
    ("dead", "Dead"),
]

EXCEPTION_CATEGORIES = [
    ("data", "Invalid or missing data"),
    ("mapping", "Unmapped value"),
    ("unknown_customer", "Unknown customer"),
    ("unknown_record", "Unknown record"),
    ("unapplied_cash", "Payment matches no invoice"),
    ("overpayment", "Overpayment"),
    ("dispute", "Disputed charge"),
    ("tax", "Tax engine"),
    ("change_order", "Change to a confirmed order"),
    ("credit_note", "Correction needs a credit note"),
    ("rate", "Rate differs from the order"),
    ("reconciliation", "Reconciliation mismatch"),
    ("assurance", "Revenue assurance threshold breached"),
    ("remote_rejected", "Remote system rejected the request"),
    ("configuration", "Configuration"),
    ("lock_date", "Accounting period locked"),
    ("dead_job", "Job failed repeatedly"),
    ("access", "Missing access rights"),
]
EXCEPTION_STATES = [
    ("open", "Open"),
    ("resolved", "Resolved"),
    ("ignored", "Ignored"),
]
SEVERITIES = [("low", "Low"), ("medium", "Medium"), ("high", "High")]

DEFAULT_MAX_ATTEMPTS = 5
DEFAULT_MAX_BACKOFF = 3600
# A started job whose heartbeat is older than this, and whose worker no longer
# holds its advisory lock, is taken back to pending by the recovery. The lock is
# taken before the claim commits and PostgreSQL drops it with the dead worker's
# connection, so a free lock already means a dead worker; the heartbeat age is a
# second signal (a live worker beats every HEARTBEAT_INTERVAL_SECONDS, so only
# one that missed two beats AND lost its lock is taken back). Kept short because
# a dead job holds its channel's capacity (a capacity-1 channel stops) until
# recovered: after a worker is killed mid-job its channel runs again within
# about STALE_HEARTBEAT_SECONDS + RECOVERY_CHECK_SECONDS.
STALE_HEARTBEAT_SECONDS = 12
HEARTBEAT_INTERVAL_SECONDS = 5
# Job workers also look for dead workers' jobs, at most this often per process,
# so recovery does not wait for the recovery cron's next run (one indexed query).
RECOVERY_CHECK_SECONDS = 4
# Namespace of the advisory locks a running job holds (first key of the pair).
JOB_LOCK_NAMESPACE = 824201
CHANNEL_LOCK_NAMESPACE = 824202
# (The advisory locks of a job's resources: lib/resources.py, 824203.)
# Work that meets a concurrent transaction (serialization failure, deadlock,
# ``ConcurrencyConflict``) runs again at once in a fresh transaction, this many
# times, each after a short random pause (seconds, times the retry's number) so
# two colliding jobs do not collide again; then the usual backoff takes over.
CONFLICT_RETRIES = 3
CONFLICT_RETRY_PAUSE = (0.02, 0.1)

# Events are kept at least this long so a late redelivery is still recognised as a
# duplicate (Stripe retries for 3 days; other senders less).
MIN_EVENT_RETENTION_DAYS = 7
DEFAULT_MAX_BODY_BYTES = 1024 * 1024
WEBHOOK_TOLERANCE_SECONDS = 300
DEFAULT_SECRET_ROTATION_HOURS = 24
# Request headers kept with an event; the signature is verified, not stored.
KEPT_HEADERS = ("Content-Type", "User-Agent", "X-Request-Id", "X-Correlation-Id")

PRUNE_BATCH_SIZE = 5000
