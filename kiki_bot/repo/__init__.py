"""The user's model repository on disk: its configuration, records, manifests, atomic writes, the training
set, the figures, purges and the card files (DESIGN.md section 2)."""
