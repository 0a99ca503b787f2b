"""Face engine: detection, alignment, embeddings, quality, liveness, protected templates."""
