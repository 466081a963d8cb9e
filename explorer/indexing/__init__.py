"""Big corpora: build a persistent index on Ray, open it instead of a corpus, score whole corpora on Ray.

* `shards.py`: a job cut into shards, each written to disk with its checksum as it finishes,
  so a rerun resumes; and the workers that compute one shard (models loaded once per worker);
* `ray_jobs.py`: the only module that imports Ray (lazily): starts or joins a cluster and runs
  shards through Ray Data's `map_batches`;
* `build.py`: `python -m explorer index`: embeddings + FAISS per bi-encoder, BM25, late-interaction
  token vectors, `manifest.json`;
* `prebuilt.py`: opens an index folder as `Retriever`s the one pipeline runs on unchanged;
* `ray_scoring.py`: a `PairScorer` that scores every (query, document) pair as a Ray job.

The app never needs Ray: only building an index and `eval --ray` import it.
"""
