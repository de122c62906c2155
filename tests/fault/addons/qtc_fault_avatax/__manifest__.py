{
    "name": "QTC fault suite: AvaTax stand-in address",
    "summary": "Test-only: sends the AvaTax sandbox calls to a loopback stand-in",
    "version": "18.0.1.0.0",
    "category": "Hidden",
    "license": "LGPL-3",
    "author": "QTC",
    "depends": ["qtc_tax"],
    "data": [],
    "installable": True,
}
