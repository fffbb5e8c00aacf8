"""The build stage: catalog -> encoder -> Feast -> Faiss, and the plan of what an update must encode, write or
drop."""
