from . import test_sale_access, test_sale_quote
