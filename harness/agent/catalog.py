"""Names shared by the host and the agent: probe models, formats, loaders.

Standard library only; imported on the host (validation, planning) and in
containers (the agent), so it must run on Python 3.9.
"""

PROBES = {
    "dense": {
        "description": "small Dense classifier, fixed seed, compiled with sparse_categorical_accuracy",
        "hazards": [],
    },
}

# Format -> which Keras generations can write it.
FORMATS = {
    "h5": (2, 3),
    "keras": (2, 3),
}

# Loader -> (format it applies to ...) ; "*" means every format that holds a full model.
LOADERS = {
    "load_model": ("h5", "keras"),
}
