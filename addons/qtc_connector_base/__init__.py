from . import cli, controllers, models, wizards
from .hooks import post_init_hook
