"""Small helpers of the tax connector."""

from decimal import Decimal

from odoo.addons.qtc_connector_base.exceptions import QtcUserError

from .lib.engine import Address


class TaxUserError(QtcUserError):
    """A business error of the tax connector.

    A ``BusinessError`` for the job runner (the job stops in failed and an
    exception opens with its category and problems) and a ``UserError`` for the
    web client: the person who posts reads the message, every problem and what
    to do, in a warning dialog instead of a server error.
    """


def to_decimal(value, digits=6):
    """The Decimal a float setting stands for: ``6.25`` -> ``Decimal("6.25")``.

    :param value: a float (or int)
    :param digits: decimals kept (float noise beyond them is dropped)
    """
    return Decimal(repr(round(float(value), digits)))


def amount_decimal(value, currency):
    """A monetary float as an exact Decimal in ``currency``'s minor unit."""
    places = currency.decimal_places
    return Decimal(repr(round(float(value), places))).quantize(
        Decimal(1).scaleb(-places)
    )


def partner_address(partner):
    """A partner's postal address as a ``lib.engine.Address``.

    :param partner: a ``res.partner`` with a country
    """
    return Address(
        country=partner.country_id.code.upper(),
        line1=partner.street or "",
        line2=partner.street2 or "",
        city=partner.city or "",
        region=partner.state_id.code or "",
        postal_code=partner.zip or "",
    )
