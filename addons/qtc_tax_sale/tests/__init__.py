from . import test_sale_quote
