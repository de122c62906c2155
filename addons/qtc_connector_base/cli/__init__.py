from . import qtc_drain
