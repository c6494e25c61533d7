"""One module per `aura` subcommand; each imports only what it needs."""
