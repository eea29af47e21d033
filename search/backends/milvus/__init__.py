"""The ``milvus`` retrieval backend: passages, vectors, BM25 and the document catalog held in Milvus 2.5.

``schema`` names and creates the collections and their indexes, ``rows`` turns a ``DocumentUpsert`` into
their rows, ``control`` keeps the small rows everything else hangs on (live state, claims, term
statistics), ``sets`` which set of collections is live, ``lease`` the fenced one-writer guarantee,
``terms`` the term statistics kept at ingest, ``writes`` the writer's row work, ``catalog`` document
lookups, ``view`` answers searches, ``client`` counts requests, ``location`` parses index URLs, and
``backend`` drives the commit protocol.
"""
