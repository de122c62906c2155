{
    "name": "QTC benchmark helpers",
    "summary": "Bench-only: a bare one-insert route and a no-op job target. "
    "Never installed outside benchmarks.",
    "version": "18.0.1.0.0",
    "author": "QTC",
    "license": "LGPL-3",
    "depends": ["qtc_connector_base"],
    "data": ["security/ir.model.access.csv"],
    "installable": True,
}
