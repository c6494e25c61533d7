"""Store errors. Stdlib only, so fast read-only commands can catch them without pydantic."""


class StoreError(Exception):
    """A store problem a user can act on; its message is one line that says what to do."""


class NotFound(StoreError):
    pass


class Ambiguous(StoreError):
    pass


class SchemaTooNew(StoreError):
    pass


class CorruptDatabase(StoreError):
    pass
