"""The board's widgets, one area per module; each widget's messages are nested in its class."""
