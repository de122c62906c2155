from . import (
    test_person_errors,
    test_sale_access,
    test_sale_quote,
    test_tax_sale_trace,
)
