"""Pure folds of journaled events into read models (books, later orders and positions)."""
