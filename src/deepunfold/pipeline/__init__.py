"""The pipeline layer: config, io, manifest, resources, job set-up, code provenance.

The only layer that knows paths and config keys."""
