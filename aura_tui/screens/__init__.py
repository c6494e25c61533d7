"""The app's screens: the board, task detail, new task, diff review, help, and their dialogs."""
