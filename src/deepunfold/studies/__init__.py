"""Study code of single tasks that is neither a solver nor a model."""
