"""Server-side access checks for the suite's buttons.

Every public method of a model is an endpoint: any logged-in user can call it
through JSON-RPC (``/web/dataset/call_kw``), whatever the views show. Each
``action_*`` and button method therefore opens with one of these checks,
before any ``sudo()`` or raw SQL::

    def action_disable(self):
        check_action(self, GROUP_MANAGER, "write", self.env._("disable a backend"))
        ...

Code running with superuser rights (``env.su``) passes: it is the system, not
a person, and reached that point through a checked entry.
"""

from odoo.exceptions import AccessError

GROUP_USER = "qtc_connector_base.group_qtc_user"
GROUP_MANAGER = "qtc_connector_base.group_qtc_manager"


def check_group(env, group, action):
    """Raise ``AccessError`` unless the current user is in ``group``.

    :param group: xml id of a ``res.groups``
    :param action: what the user tried, as a verb phrase for the message
        ("disable a backend")
    """
    if env.su or env.user.has_group(group):
        return
    record = env.ref(group, raise_if_not_found=False)
    name = record.sudo().full_name if record else group
    raise AccessError(
        env._(
            "You may not %(action)s: only members of the group %(group)s may.",
            action=action,
            group=name,
        )
    )


def check_any_group(env, groups, action):
    """Raise ``AccessError`` unless the current user is in one of ``groups``."""
    if env.su or any(env.user.has_group(group) for group in groups):
        return
    names = []
    for group in groups:
        record = env.ref(group, raise_if_not_found=False)
        names.append(record.sudo().full_name if record else group)
    raise AccessError(
        env._(
            "You may not %(action)s: only members of one of the groups %(groups)s may.",
            action=action,
            groups=", ".join(names),
        )
    )


def check_action(records, group, operation, action):
    """The group check, then Odoo's access rights and record rules for
    ``operation`` (``read``, ``write``...) on ``records``.

    :raises AccessError: with a message naming the group or the records
    """
    check_group(records.env, group, action)
    records.check_access(operation)
