"""Credentials are now bound to their backend and name (see lib/secretbox.py):
re-encrypt every credential stored in the older, unbound format. Afterwards
the older format is refused everywhere but here.

Stops the upgrade when such credentials exist and no encryption key is
configured (set ``qtc_encryption_key`` and run the upgrade again); a
credential no configured key opens is left as it is and named in the log
(enter it again on its backend).
"""

import logging

from odoo import SUPERUSER_ID, api

_logger = logging.getLogger(__name__)


def migrate(cr, version):
    if not version:
        return
    env = api.Environment(cr, SUPERUSER_ID, {})
    done, left = env["qtc.credential"]._qtc_bind_unbound()
    _logger.info(
        "credentials bound to their backend and name: %s re-encrypted, %s left",
        done,
        len(left),
    )
