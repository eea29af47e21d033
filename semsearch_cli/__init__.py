"""The ``semsearch`` command: a thin shell over ``indexer``, ``search`` and ``web``."""
