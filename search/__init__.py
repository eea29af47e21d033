"""Read side of semsearch: the embedding model, the on-disk index format and ranking."""
