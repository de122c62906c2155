"""Used only by the fault suite (``tests/fault/run_faults.py``), never
installed with the product.

AvaTax has fixed addresses per environment (``qtc_tax.const.AVATAX_BASE_URLS``).
To make the tax engine fail and recover on demand, the suite serves an AvaTax
stand-in on 127.0.0.1 and starts Odoo with ``QTC_FAULT_AVATAX_URL`` set to it:
this module, loaded in every Odoo process with the registry, points the sandbox
address there. Everything else (the HTTP client, the breaker, the hold policy,
the retry jobs) is the product's own code.
"""

import os

from odoo.addons.qtc_tax import const

_STANDIN_URL = os.environ.get("QTC_FAULT_AVATAX_URL")
if _STANDIN_URL:
    const.AVATAX_BASE_URLS["sandbox"] = _STANDIN_URL
