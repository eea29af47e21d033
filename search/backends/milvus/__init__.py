"""The ``milvus`` retrieval backend: passages, vectors, BM25 and the document catalog held in Milvus 2.5.

``schema`` names and creates the collections, ``rows`` turns a ``DocumentUpsert`` into their rows,
``control`` keeps the small rows everything else hangs on (live pointer, committed state, writer lease),
``lease`` is the one-writer guarantee, ``view`` answers searches and ``backend`` drives the commit protocol.
"""
