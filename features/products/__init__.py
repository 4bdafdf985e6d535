"""Products: the catalog, ranking per face and the account profile."""
