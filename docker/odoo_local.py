"""Run the Odoo 18 that ``python3`` imports, as ``odoo-bin`` would.

``python3 -m odoo`` is enough for one process, but with ``--workers`` Odoo starts
its websocket (gevent) worker by re-running ``sys.argv[0]`` as a script, which is
then Odoo's ``__main__.py`` and fails to import. Launching through this file gives
Odoo a real script to re-run. Used by docker/run.sh (local mode) and the benchmarks.
"""

import os

os.environ.setdefault("TZ", "UTC")

if __name__ == "__main__":
    from odoo.cli import main

    main()
