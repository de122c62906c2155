"""Arithmetic on the engine's tax amounts before they become Odoo taxes.

Plain Python (no Odoo): amounts are ``Decimal``.
"""

from decimal import Decimal

RATE_QUANTUM = Decimal("0.000001")


def align_to_total(amounts, total):
    """The amounts per tax, the engine's document total kept exact.

    An engine's document total is not always the sum of its line details
    (it rounds the document, not each detail). The residual goes to the
    largest amount, so the jurisdiction that moves least, relatively, absorbs
    it and the document's tax still equals the engine's to the cent.

    :param amounts: ``{key: Decimal}`` the summed details per tax
    :param total: ``Decimal`` the engine's document total
    :returns: a new dict; ``amounts`` itself is left as it was. Without any
        amount there is nowhere to put a residual: returned empty.
    """
    aligned = dict(amounts)
    residual = total - sum(aligned.values(), Decimal(0))
    if residual and aligned:
        # Ties go to the first key, so the same answer aligns the same way.
        largest = max(aligned, key=lambda key: abs(aligned[key]))
        aligned[largest] += residual
    return aligned


def effective_rate(tax, base):
    """The rate ``tax`` is of ``base``, to six decimals (a fraction:
    ``0.0625`` is 6.25 %); zero on a zero base."""
    if not base:
        return Decimal(0)
    return (tax / base).quantize(RATE_QUANTUM)
