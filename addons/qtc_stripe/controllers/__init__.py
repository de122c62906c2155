from . import main, payment_link
