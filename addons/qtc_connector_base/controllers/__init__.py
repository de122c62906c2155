from . import main, person_errors
