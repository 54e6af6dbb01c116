"""CLIP pieces: embedding, caches, vocabulary and alignment, concept codes, the demo backbone."""
