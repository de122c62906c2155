"""Job functions: the only methods a queued job may run.

A stored job names a model and a method; a worker looks the method up and calls
it. Were any method allowed, whoever could write a job row could run anything
(``ir.config_parameter.set_param``, a private method) with the job's rights. So
a method must be marked as a job function in code, where a reviewer sees it::

    from odoo.addons.qtc_connector_base.lib.job_function import job_function

    class QtcBackend(models.Model):
        _inherit = "qtc.backend"

        @job_function
        def _x_sync(self):
            ...

The mark is an attribute of the function, never data: no record, setting or
RPC call can add one. It is looked up along the model class's MRO, so an
addon overriding a job function (without repeating the decorator) keeps it
registered, and a method of the same name on an unrelated model is not.
"""

MARKER = "_qtc_job_function"


def job_function(func):
    """Mark ``func`` as a method a job may run; returns ``func`` itself (so it
    combines with ``api.model`` in either order)."""
    setattr(func, MARKER, True)
    return func


def is_job_function(cls, name):
    """Whether ``name`` is a job function of the class ``cls``: some class in
    its MRO defines an attribute ``name`` that carries the mark.

    :param cls: a class (for an Odoo model, ``type(records)``)
    :param name: the method name a job stores
    """
    if not isinstance(name, str) or not name.isidentifier():
        return False
    for klass in getattr(cls, "__mro__", ()):
        attribute = vars(klass).get(name)
        if attribute is None:
            continue
        function = getattr(attribute, "__func__", attribute)
        if getattr(function, MARKER, False) is True:
            return True
    return False
