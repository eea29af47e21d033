"""HTTP surface of semsearch: the JSON API and the search page, both over one ``Searcher``."""
