"""Write side of semsearch: documents -> passages -> embeddings -> index files."""
